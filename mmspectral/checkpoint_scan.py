"""What a checkpoint's pickle may hold, checked before anything in it is
unpickled.

torch's weights-only unpickler trusts more than weights need (a
``bytearray`` of any size; after ``import torch.distributed`` also
``traceback.FrameSummary``, which reads files, and ``DeviceMesh``), and
numpy's ``dtype`` accepts a BUILD state that overlaps an object field with
an integer field, which plants a pointer. So before torch unpickles a
checkpoint, :func:`scan_pickle` walks its opcodes
(:func:`pickletools.genops`) with a symbolic stack and memo. Nothing is
created; but every global, every call (REDUCE, NEWOBJ), every BUILD and
every persistent id is seen with its arguments, and each must be one of the
forms torch and mmengine checkpoints take:

* tensors and parameters as ``torch.save`` writes them (storages, the
  ``torch._utils._rebuild_*`` functions with their plain arguments, meta
  tensors, tensors with attributes), torch dtypes, ``torch.Size``,
  ``torch.device``;
* ``OrderedDict``, ``Counter`` (mmengine's multi-step schedulers), ``set``,
  ``complex``, and bytes and bytearrays given as data;
* mmengine's ``HistoryBuffer`` (its four fields, its statistics methods
  named through ``getattr(HistoryBuffer, 'mean')``, answered by
  :func:`history_buffer_getattr`), numpy arrays and scalars of plain
  numeric dtypes (bool, int, uint, float, complex), in numpy's own pickled
  forms;
* classes a caller names (``argparse.Namespace`` for the converters), as
  plain attribute holders.

Anything else is refused with a :class:`PickleRefused` naming it. A pickle
that passes holds nothing torch's unpickler would create beyond these.
"""
import pickle
import pickletools
import struct
import warnings
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np
import torch

__all__ = [
    'PickleRefused', 'PickleMalformed', 'PickleScan', 'scan_pickle',
    'history_buffer_getattr', 'torch_safe_globals', 'rewrite_for_torch'
]

HISTORY_BUFFER = 'mmengine.logging.history_buffer.HistoryBuffer'
# what HistoryBuffer._set_default_statistics registers
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')
# the instance fields HistoryBuffer.__getstate__ pickles
HISTORY_BUFFER_FIELDS = ('max_length', '_log_history', '_count_history',
                         'statistics_methods')
# numpy dtypes of plain numbers (what HistoryBuffer, numpy scalars and the
# numpy random state hold), by the type string numpy pickles them with
NUMERIC_TYPESTRS = frozenset(('b1', 'i1', 'i2', 'i4', 'i8', 'u1', 'u2', 'u4',
                              'u8', 'f2', 'f4', 'f8', 'c8', 'c16'))
# numpy.dtype.__reduce__'s state of a plain number: version 3, byte order,
# no subarray, names or fields, no element size or alignment, no flags
_PLAIN_DTYPE_STATE = (3, None, None, None, None, -1, -1, 0)


class PickleRefused(Exception):
    """A pickle that holds something a checkpoint does not."""


class PickleMalformed(PickleRefused):
    """Bytes that are not a complete, well-formed pickle (a truncated or
    corrupt file)."""


def history_buffer_getattr(obj, name: str):
    """``getattr`` for unpickling, limited to ``HistoryBuffer``'s own
    statistics methods; anything else is refused.

    A ``HistoryBuffer`` pickles its statistics methods as
    ``getattr(HistoryBuffer, 'mean')``. The real ``getattr`` is never
    allowed: with it a pickle reaches any attribute
    (``getattr(getattr, '__self__')`` is the ``builtins`` module, so
    ``exec``)."""
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and name in HISTORY_BUFFER_STATISTICS:
        return HistoryBuffer.__dict__[name]
    owner = getattr(obj, '__name__', type(obj).__name__)
    raise pickle.UnpicklingError(
        f'Unsupported operation: getattr({owner}, {name!r}) is not '
        'something an mmengine checkpoint holds')


# -- the symbolic machine -----------------------------------------------------


class Node:
    """A mutable object of the pickle, as the opcodes describe it: a list,
    dict or set (``items``), a global (``name``), the result of a call of
    the global ``func`` with ``args`` (its BUILD states in ``builds``,
    items set on it in ``items``), or a storage (persistent id ``args``)."""
    __slots__ = ('kind', 'name', 'func', 'args', 'items', 'builds', 'new')

    def __init__(self, kind: str, name: str = None, func: 'Node' = None,
                 args: tuple = (), new: bool = False):
        self.kind, self.name, self.func = kind, name, func
        self.args, self.new = args, new
        self.items: list = []
        self.builds: list = []


def _called(value, *names) -> bool:
    return isinstance(value, Node) and value.kind == 'call' and \
        value.func.name in names


def _is_global(value, names) -> bool:
    return isinstance(value, Node) and value.kind == 'global' and \
        value.name in names


class _Machine:
    """Runs the opcodes of one pickle on symbols."""

    def __init__(self, allowed: 'AllowList'):
        self.allowed = allowed
        self.stack: list = []
        self.metastack: list = []
        self.memo: dict = {}
        self.calls: List[Node] = []
        self.storages: List[Node] = []
        self.proto = 0

    def pop(self):
        return self.stack.pop()

    def pop_mark(self) -> list:
        items, self.stack = self.stack, self.metastack.pop()
        return items

    def top(self, *kinds) -> Node:
        target = self.stack[-1]
        if not (isinstance(target, Node) and target.kind in kinds):
            raise PickleMalformed(
                f'malformed pickle (adds items to {_describe(target)})')
        return target

    def add_pairs(self, pairs: list):
        target = self.top('dict', 'call')
        if target.kind == 'call' and not self.allowed.holds_items(target):
            raise PickleRefused(f'it sets items on {target.func.name}()')
        if len(pairs) % 2:
            raise PickleMalformed('malformed pickle (odd SETITEMS)')
        target.items += list(zip(pairs[::2], pairs[1::2]))

    def global_node(self, module, name) -> Node:
        if not isinstance(module, str) or not isinstance(name, str):
            raise PickleMalformed(
                'malformed pickle (a global named by non-strings)')
        module, name = _canonical_name(module, name)
        full = f'{module}.{name}'
        if not self.allowed.knows(full):
            raise PickleRefused(
                f'it holds the global {full}, which is not something a '
                'checkpoint holds')
        return Node('global', full, args=(module, name))

    def call(self, func, args, new=False) -> object:
        if not (isinstance(func, Node) and func.kind == 'global'):
            raise PickleRefused(f'it calls {_describe(func)}')
        if type(args) is not tuple:
            raise PickleMalformed(
                f'malformed pickle (arguments of {func.name} are not a '
                'tuple)')
        node = Node('call', func=func, args=args, new=new)
        result = self.allowed.check_call(node)
        if result is not node:  # folded into a literal (bytes)
            return result
        self.calls.append(node)
        return node

    # one method per opcode family, dispatched by name in run()
    def run(self, ops) -> object:
        for opcode, arg, _ in ops:
            name = opcode.name
            handler = _HANDLERS.get(name)
            if handler is None:
                raise PickleRefused(
                    f'it uses the pickle opcode {name}, which no '
                    'checkpoint uses')
            if handler(self, arg) is _STOP:
                return self.result
        raise PickleMalformed('malformed pickle (no STOP)')


_STOP = object()


def _push_literal(m, arg):
    m.stack.append(arg)


def _push(value_factory):
    def handler(m, arg):
        m.stack.append(value_factory())
    return handler


def _op_mark(m, arg):
    m.metastack.append(m.stack)
    m.stack = []


def _op_tuple(m, arg):
    items = tuple(m.pop_mark())
    m.stack.append(items)


def _tuple_n(n):
    def handler(m, arg):
        items = [m.pop() for _ in range(n)][::-1]
        m.stack.append(tuple(items))
    return handler


def _op_list(m, arg):
    node = Node('list')
    node.items = m.pop_mark()
    m.stack.append(node)


def _op_dict(m, arg):
    items = m.pop_mark()
    m.stack.append(Node('dict'))
    m.add_pairs(items)


def _op_append(m, arg):
    item = m.pop()
    m.top('list').items.append(item)


def _op_appends(m, arg):
    items = m.pop_mark()
    m.top('list').items.extend(items)


def _op_setitem(m, arg):
    value, key = m.pop(), m.pop()
    m.add_pairs([key, value])


def _op_setitems(m, arg):
    m.add_pairs(m.pop_mark())


def _op_additems(m, arg):
    items = m.pop_mark()
    m.top('set').items.extend(items)


def _op_pop(m, arg):
    if m.stack:
        m.stack.pop()
    else:
        m.pop_mark()


def _op_pop_mark(m, arg):
    m.pop_mark()


def _op_dup(m, arg):
    m.stack.append(m.stack[-1])


def _op_put(m, arg):
    m.memo[arg] = m.stack[-1]


def _op_memoize(m, arg):
    _op_put(m, len(m.memo))


def _op_get(m, arg):
    if arg not in m.memo:
        raise PickleMalformed(
            f'malformed pickle (memo {arg} read before it is written)')
    m.stack.append(m.memo[arg])


def _op_global(m, arg):
    # genops joins the two lines with a space; a third part would be a
    # name torch reads differently, and no checkpoint has one
    module, name = arg.split(' ', 1)
    if ' ' in name:
        raise PickleRefused(f'it names the global {arg!r}')
    m.stack.append(m.global_node(module, name))


def _op_stack_global(m, arg):
    name, module = m.pop(), m.pop()
    m.stack.append(m.global_node(module, name))


def _op_reduce(m, arg):
    args, func = m.pop(), m.pop()
    m.stack.append(m.call(func, args))


def _op_newobj(m, arg):
    args, cls = m.pop(), m.pop()
    m.stack.append(m.call(cls, args, new=True))


def _op_newobj_ex(m, arg):
    kwargs, args, cls = m.pop(), m.pop(), m.pop()
    if not (isinstance(kwargs, Node) and kwargs.kind == 'dict'
            and not kwargs.items):
        raise PickleRefused('it creates an object with keyword arguments')
    m.stack.append(m.call(cls, args, new=True))


def _op_build(m, arg):
    state = m.pop()
    target = m.stack[-1]
    if not (isinstance(target, Node) and target.kind == 'call'):
        raise PickleRefused(f'it sets the state of {_describe(target)}')
    target.builds.append(state)


def _op_binpersid(m, arg):
    node = Node('storage', args=m.pop())
    m.storages.append(node)
    m.stack.append(node)


def _op_frozenset(m, arg):
    m.pop_mark()
    raise PickleRefused('it holds a frozenset, which no checkpoint holds')


def _op_proto(m, arg):
    m.proto = arg


def _op_frame(m, arg):
    pass


def _op_stop(m, arg):
    m.result = m.pop()
    if m.stack or m.metastack:
        raise PickleMalformed('malformed pickle (values left at STOP)')
    return _STOP


_HANDLERS: Dict[str, Callable] = {
    **{
        name: _push_literal
        for name in ('INT', 'BININT', 'BININT1', 'BININT2', 'LONG', 'LONG1',
                     'LONG4', 'STRING', 'BINSTRING', 'SHORT_BINSTRING',
                     'BINBYTES', 'SHORT_BINBYTES', 'BINBYTES8', 'BYTEARRAY8',
                     'UNICODE', 'SHORT_BINUNICODE', 'BINUNICODE',
                     'BINUNICODE8', 'FLOAT', 'BINFLOAT')
    },
    'NONE': _push(lambda: None),
    'NEWTRUE': _push(lambda: True),
    'NEWFALSE': _push(lambda: False),
    'EMPTY_TUPLE': _push(tuple),
    'EMPTY_LIST': _push(lambda: Node('list')),
    'EMPTY_DICT': _push(lambda: Node('dict')),
    'EMPTY_SET': _push(lambda: Node('set')),
    'MARK': _op_mark,
    'TUPLE': _op_tuple,
    'TUPLE1': _tuple_n(1),
    'TUPLE2': _tuple_n(2),
    'TUPLE3': _tuple_n(3),
    'LIST': _op_list,
    'APPEND': _op_append,
    'APPENDS': _op_appends,
    'SETITEM': _op_setitem,
    'SETITEMS': _op_setitems,
    'ADDITEMS': _op_additems,
    'FROZENSET': _op_frozenset,
    'POP': _op_pop,
    'POP_MARK': _op_pop_mark,
    'DUP': _op_dup,
    'PUT': _op_put,
    'BINPUT': _op_put,
    'LONG_BINPUT': _op_put,
    'MEMOIZE': _op_memoize,
    'GET': _op_get,
    'BINGET': _op_get,
    'LONG_BINGET': _op_get,
    'GLOBAL': _op_global,
    'STACK_GLOBAL': _op_stack_global,
    'REDUCE': _op_reduce,
    'NEWOBJ': _op_newobj,
    'NEWOBJ_EX': _op_newobj_ex,
    'BUILD': _op_build,
    'BINPERSID': _op_binpersid,
    'PROTO': _op_proto,
    'FRAME': _op_frame,
    'STOP': _op_stop,
}


def _describe(value) -> str:
    if isinstance(value, Node):
        if value.kind == 'global':
            return value.name
        if value.kind == 'call':
            return f'{value.func.name}(...)'
        return f'a {value.kind}'
    return type(value).__name__


def _canonical_name(module: str, name: str) -> Tuple[str, str]:
    """The module and name torch's unpickler resolves a GLOBAL to (Python 2
    names mapped as in ``torch._utils``)."""
    from torch._utils import IMPORT_MAPPING, NAME_MAPPING
    if (module, name) in NAME_MAPPING:
        return NAME_MAPPING[(module, name)]
    return IMPORT_MAPPING.get(module, module), name


# -- what checkpoints hold ----------------------------------------------------


def _same(value, expected) -> bool:
    """Equal and of the same type, element-wise for tuples (so that
    ``True`` is not taken for ``1``)."""
    if type(expected) is tuple:
        return type(value) is tuple and len(value) == len(expected) and all(
            _same(v, e) for v, e in zip(value, expected))
    return type(value) is type(expected) and value == expected


def _ints(value) -> bool:
    return type(value) is tuple and all(type(v) is int for v in value)


def _sizes(value) -> bool:
    return _ints(value) and all(v >= 0 for v in value)


def _is_data(value) -> bool:
    return type(value) in (bytes, bytearray)


def _attribute_dict(value) -> bool:
    """A dict of attribute names (no ``__dunder__`` ones) to values."""
    return isinstance(value, Node) and value.kind == 'dict' and all(
        type(k) is str and not k.startswith('__') for k, _ in value.items)


def _object_state(value) -> bool:
    """A state torch sets on a tensor: None, an attribute dict, or
    ``(dict, slots dict)``."""
    if type(value) is tuple and len(value) == 2:
        return all(v is None or _attribute_dict(v) for v in value)
    return value is None or _attribute_dict(value)


def _empty_hooks(value) -> bool:
    return _called(value, 'collections.OrderedDict') and \
        value.args == () and not value.items and not value.builds


def _np_itemsize(dtype: Node) -> Optional[int]:
    """The item size of a ``numpy.dtype(...)`` node of a plain number."""
    typestr = dtype.args[0] if dtype.args else None
    if type(typestr) is not str or typestr not in NUMERIC_TYPESTRS:
        return None
    return np.dtype(typestr).itemsize


def _np_data(data, dtype, shape) -> Optional[str]:
    """Why ``data`` cannot be an array of ``shape`` of ``dtype``, if so."""
    if not _called(dtype, 'numpy.dtype'):
        return f'a dtype of {_describe(dtype)}'
    itemsize = _np_itemsize(dtype)
    if itemsize is None or not _sizes(shape) or not _is_data(data):
        return 'a non-numeric dtype or malformed shape or data'
    count = 1
    for side in shape:
        count *= side
    if count * itemsize != len(data):
        return (f'{len(data)} bytes of data for {count} items of '
                f'{itemsize} bytes')
    return None


def _numpy_names(module: str, name: str) -> Tuple[str, str]:
    """Both module names numpy 1 (``numpy.core``) and 2 (``numpy._core``)
    pickle ``name`` under."""
    return f'numpy.core.{module}.{name}', f'numpy._core.{module}.{name}'


def _rule_dtype(args):
    if len(args) == 3 and type(args[0]) is str and \
            args[0] in NUMERIC_TYPESTRS and args[1] in (False, 0) and \
            args[2] in (True, 1) and all(type(a) in (bool, int)
                                         for a in args[1:]):
        return None
    return ('a dtype other than a plain number (object, void, structured '
            f'or string dtypes are refused): {args[:1]!r}')


def _build_dtype(state):
    if type(state) is tuple and len(state) == len(_PLAIN_DTYPE_STATE) and \
            state[1] in ('<', '>', '|', '=') and _same(
                state[:1] + (None, ) + state[2:], _PLAIN_DTYPE_STATE):
        return None
    return ('a dtype state other than that of a plain number (fields, '
            'subarrays, item sizes and flags are refused)')


def _rule_np_reconstruct(args):
    if len(args) == 3 and _is_global(args[0], ('numpy.ndarray', )) and \
            _same(args[1], (0, )) and args[2] == b'b' and _is_data(args[2]):
        return None
    return 'arguments other than (numpy.ndarray, (0,), b"b")'


def _build_np_array(state):
    if type(state) is not tuple or len(state) != 5 or \
            not _same(state[0], 1) or type(state[3]) is not bool:
        return 'an array state of another form than numpy writes'
    problem = _np_data(state[4], state[2], state[1])
    return problem and f'an array state with {problem}'


def _rule_np_scalar(args):
    if len(args) != 2:
        return 'other than (dtype, data)'
    problem = _np_data(args[1], args[0], ())
    return problem and f'a scalar of {problem}'


def _rule_np_frombuffer(args):
    if len(args) != 4 or args[3] not in ('C', 'F'):
        return 'other than (data, dtype, shape, order)'
    problem = _np_data(args[0], args[1], args[2])
    return problem and f'an array of {problem}'


def _rule_history_getattr(args):
    if len(args) == 2 and _is_global(args[0], (HISTORY_BUFFER, )) and \
            args[1] in HISTORY_BUFFER_STATISTICS:
        return None
    return (f'other than (HistoryBuffer, one of '
            f'{"/".join(HISTORY_BUFFER_STATISTICS)})')


def _statistics_method(value) -> bool:
    return _called(value, 'builtins.getattr') or _is_global(
        value, _HISTORY_BUFFER_METHODS)


def _build_history_buffer(state):
    if not isinstance(state, Node) or state.kind != 'dict':
        return 'a state that is not a dict'
    for key, value in state.items:
        if key not in HISTORY_BUFFER_FIELDS or type(key) is not str:
            return f'the field {key!r}'
        if key == 'statistics_methods' and not (
                isinstance(value, Node) and value.kind == 'dict' and all(
                    type(k) is str and _statistics_method(v)
                    for k, v in value.items)):
            return 'statistics methods other than its own'
    return None


def _build_attributes(state):
    return None if _attribute_dict(state) else \
        'a state other than a dict of attributes'


def _rule_no_args(args):
    return None if args == () else 'arguments'


def _rule_counter(args):
    if args == () or (len(args) == 1 and isinstance(args[0], Node)
                      and args[0].kind == 'dict'):
        return None
    return 'other than a dict'


def _rule_set(args):
    if args == () or (len(args) == 1 and isinstance(args[0], Node)
                      and args[0].kind == 'list' and all(
                          type(v) in (type(None), bool, int, float, str,
                                      bytes) for v in args[0].items)):
        return None
    return 'other than a list of numbers and strings'


def _rule_complex(args):
    if 1 <= len(args) <= 2 and all(type(a) in (int, float) for a in args):
        return None
    return 'other than numbers'


def _rule_bytearray(args):
    # never a size: bytearray(3 << 30) is 3 GiB of memory
    if args == () or (len(args) == 1 and type(args[0]) is bytes):
        return None
    return 'other than bytes (a size would allocate memory)'


def _rule_codecs_encode(args):
    if len(args) == 2 and type(args[0]) is str and args[1] in ('latin1',
                                                               'latin-1'):
        return None
    return 'other than (text, "latin1") (how bytes are pickled)'


def _rule_size(args):
    return None if len(args) == 1 and _sizes(args[0]) else 'other than sizes'


def _rule_device(args):
    if len(args) in (1, 2) and type(args[0]) is str and (
            len(args) == 1 or type(args[1]) is int):
        return None
    return 'other than a device name'


def _storage(value) -> bool:
    return isinstance(value, Node) and value.kind == 'storage'


def _tensor(value) -> bool:
    return _called(value, *_TENSOR_REBUILDS)


def _torch_dtype(value) -> bool:
    return _is_global(value, _torch_dtypes())


def _metadata(value) -> bool:
    return value is None or _attribute_dict(value)


def _check(*predicates, optional=()):
    """A rule: the arguments satisfy ``predicates`` in order, followed by
    any prefix of ``optional``."""
    def rule(args):
        required = len(predicates)
        if required <= len(args) <= required + len(optional) and all(
                p(a) for p, a in zip(predicates + tuple(optional), args)):
            return None
        return 'arguments other than those torch.save writes'
    return rule


_TENSOR_ARGS = (_storage, lambda v: type(v) is int, _sizes, _ints)
_TENSOR_REBUILD_RULES = {
    'torch._utils._rebuild_tensor': _check(*_TENSOR_ARGS),
    'torch._utils._rebuild_tensor_v2': _check(
        *_TENSOR_ARGS, lambda v: type(v) is bool, _empty_hooks,
        optional=(_metadata, )),
    'torch._utils._rebuild_tensor_v3': _check(
        *_TENSOR_ARGS, lambda v: type(v) is bool, _empty_hooks, _torch_dtype,
        optional=(_metadata, )),
    'torch._utils._rebuild_parameter': _check(
        _tensor, lambda v: type(v) is bool, _empty_hooks),
    'torch._utils._rebuild_parameter_with_state': _check(
        _tensor, lambda v: type(v) is bool, _empty_hooks, _object_state),
    'torch._utils._rebuild_meta_tensor_no_storage': _check(
        _torch_dtype, _sizes, _ints, lambda v: type(v) is bool),
}
_TENSOR_REBUILDS = tuple(_TENSOR_REBUILD_RULES) + (
    'torch._tensor._rebuild_from_type_v2', )
_TENSOR_TYPES = ('torch.Tensor', 'torch.nn.parameter.Parameter')


def _rule_rebuild_from_type(args):
    """A tensor with Python attributes: ``func(*args)`` as ``new_type``,
    then its attributes set."""
    if len(args) == 4 and _is_global(args[0], _TENSOR_REBUILD_RULES) and \
            _is_global(args[1], _TENSOR_TYPES) and type(args[2]) is tuple \
            and _object_state(args[3]):
        return _TENSOR_REBUILD_RULES[args[0].name](args[2])
    return 'arguments other than those torch.save writes'


_HISTORY_BUFFER_METHODS = tuple(f'{HISTORY_BUFFER}.{name}'
                                for name in HISTORY_BUFFER_STATISTICS)

# what may be called (REDUCE), with the rule on its arguments
_CALLS: Dict[str, Callable] = {
    **_TENSOR_REBUILD_RULES,
    'torch._tensor._rebuild_from_type_v2': _rule_rebuild_from_type,
    'torch.Size': _rule_size,
    'torch.device': _rule_device,
    'collections.OrderedDict': _rule_no_args,
    'collections.Counter': _rule_counter,
    'builtins.set': _rule_set,
    'builtins.complex': _rule_complex,
    'builtins.bytearray': _rule_bytearray,
    '_codecs.encode': _rule_codecs_encode,
    'builtins.bytes': _rule_no_args,
    'builtins.getattr': _rule_history_getattr,
    'numpy.dtype': _rule_dtype,
    **{name: _rule_np_reconstruct
       for name in _numpy_names('multiarray', '_reconstruct')},
    **{name: _rule_np_scalar for name in _numpy_names('multiarray', 'scalar')},
    **{name: _rule_np_frombuffer
       for name in _numpy_names('numeric', '_frombuffer')},
}
# what a call's result may get a BUILD state from, with the rule on it
_BUILDS: Dict[str, Callable] = {
    'collections.OrderedDict': _build_attributes,
    'numpy.dtype': _build_dtype,
    **{name: _build_np_array
       for name in _numpy_names('multiarray', '_reconstruct')},
}
# calls that make data, folded into it when read (their arguments are
# literals, so the call is checked at once)
_FOLDED = {
    '_codecs.encode': (_rule_codecs_encode, lambda text, _: text.encode(
        'latin-1')),
    'builtins.bytearray': (_rule_bytearray, bytearray),
    'builtins.bytes': (_rule_no_args, bytes),  # b'' in protocol 2
}
# what SETITEM(S) may add items to, besides dicts
_ITEM_HOLDERS = ('collections.OrderedDict', 'collections.Counter')


def _torch_dtypes() -> frozenset:
    return frozenset(
        str(v) for v in vars(torch).values() if isinstance(v, torch.dtype))


def _storage_classes() -> Dict[str, int]:
    """Each storage class ``torch.save`` names, with its item size."""
    sizes = {}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # TypedStorage is deprecated
        for cls in torch._storage_classes:
            if cls is torch.storage.TypedStorage:
                continue
            try:
                itemsize = 1 if cls is torch.UntypedStorage else \
                    cls.dtype.itemsize
            except Exception:  # a storage class without a dtype
                itemsize = 1
            sizes[f'{cls.__module__}.{cls.__name__}'] = itemsize
    return sizes


_STORAGE_SIZES = _storage_classes()
# globals that may appear as values (never called)
_VALUES = frozenset(
    _torch_dtypes() | set(_STORAGE_SIZES) | set(_TENSOR_TYPES)
    | set(_HISTORY_BUFFER_METHODS) | {'numpy.ndarray', HISTORY_BUFFER})


class AllowList:
    """The rules above, and the plain classes a caller allows for one read
    (e.g. ``argparse.Namespace``): created empty (NEWOBJ without
    arguments), given a dict of attributes (BUILD)."""

    def __init__(self, classes: Iterable[type] = ()):
        self.classes = {f'{c.__module__}.{c.__qualname__}': c
                        for c in classes}
        self.new_objects = set(self.classes) | {HISTORY_BUFFER}

    def knows(self, name: str) -> bool:
        return name in _CALLS or name in _VALUES or name in self.classes

    def holds_items(self, node: Node) -> bool:
        return node.func.name in _ITEM_HOLDERS

    def check_call(self, node: Node):
        """At the call: the global may be called so; bytes are folded into
        their value. The rest is checked by :meth:`check_final`."""
        name = node.func.name
        if node.new:
            if name not in self.new_objects:
                raise PickleRefused(f'it creates an object of {name}')
        elif name not in _CALLS:
            raise PickleRefused(f'it calls {name}')
        if name in _FOLDED:
            rule, value = _FOLDED[name]
            self._refuse_unless(node, rule(node.args))
            return value(*node.args)
        return node

    def check_final(self, node: Node):
        """Once the whole pickle is read (items and BUILD states only ever
        grow, so what holds at the end held all along): the call's
        arguments, and its BUILD state."""
        name = node.func.name
        self._refuse_unless(node, _rule_no_args(node.args) if node.new else
                            _CALLS[name](node.args))
        if not node.builds:
            return
        if node.new:
            build = _build_history_buffer if name == HISTORY_BUFFER else \
                _build_attributes
        else:
            build = _BUILDS.get(name)
        if build is None or len(node.builds) > 1:
            raise PickleRefused(f'it sets the state of {name}(...), which '
                                'no checkpoint does')
        problem = build(node.builds[0])
        if problem:
            raise PickleRefused(f'it gives {name}(...) {problem}')

    @staticmethod
    def _refuse_unless(node: Node, problem: Optional[str]):
        if problem:
            raise PickleRefused(f'it calls {node.func.name} with {problem}')


def _storage_record(node: Node) -> Tuple[str, int]:
    """``(key, bytes)`` of a storage's persistent id (torch's zip format:
    ``('storage', class, key, location, numel)``; the legacy format adds
    the view of a shared storage)."""
    pid = node.args
    if type(pid) is tuple and len(pid) in (5, 6) and \
            pid[0] in ('storage', b'storage') and \
            _is_global(pid[1], _STORAGE_SIZES) and type(pid[2]) is str and \
            type(pid[3]) is str and type(pid[4]) is int and pid[4] >= 0 and (
                len(pid) == 5 or pid[5] is None or (
                    type(pid[5]) is tuple and len(pid[5]) == 3
                    and type(pid[5][0]) is str and _sizes(pid[5][1:]))):
        return pid[2], pid[4] * _STORAGE_SIZES[pid[1].name]
    raise PickleRefused('it loads a persistent object other than a tensor '
                        'storage')


# the opcodes torch's weights-only unpickler reads
TORCH_OPCODES = frozenset((
    'APPEND', 'APPENDS', 'BINFLOAT', 'BINGET', 'BININT', 'BININT1',
    'BININT2', 'BINPERSID', 'BINPUT', 'BINUNICODE', 'BUILD', 'EMPTY_DICT',
    'EMPTY_LIST', 'EMPTY_SET', 'EMPTY_TUPLE', 'GLOBAL', 'LONG1',
    'LONG_BINGET', 'LONG_BINPUT', 'MARK', 'NEWFALSE', 'NEWOBJ', 'NEWTRUE',
    'NONE', 'PROTO', 'REDUCE', 'SETITEM', 'SETITEMS', 'SHORT_BINSTRING',
    'STOP', 'TUPLE', 'TUPLE1', 'TUPLE2', 'TUPLE3'))


class PickleScan:
    """What :func:`scan_pickle` found in a pickle that passed.

    Attributes:
        result: The unpickled object, as symbols.
        storages (list[tuple[str, int]]): ``(key, bytes)`` of every tensor
            storage it loads.
        needs_rewrite (bool): It uses opcodes torch's weights-only unpickler
            does not read (pickle protocols 3 to 5): give torch
            :func:`rewrite_for_torch` of it instead.
    """

    def __init__(self, result, storages, opcodes):
        self.result = result
        self.storages = storages
        self.needs_rewrite = not opcodes <= TORCH_OPCODES


def _check_calls(machine: '_Machine', allowed: AllowList):
    # dtypes first, so that a crafted one is named as such, not as the
    # array it would have made
    for node in sorted(machine.calls,
                       key=lambda node: node.func.name != 'numpy.dtype'):
        allowed.check_final(node)


def scan_pickle(source, classes: Iterable[type] = ()) -> PickleScan:
    """Check one pickle (bytes, or a binary file positioned at it, which is
    left just after its STOP) against what checkpoints hold.

    Args:
        source (bytes | file): The pickle.
        classes (Iterable[type]): Plain classes also allowed (see
            :class:`AllowList`).

    Raises:
        PickleRefused: Naming the global, call or state that no checkpoint
            holds, or what makes the pickle malformed.
    """
    allowed = AllowList(classes)
    machine = _Machine(allowed)
    opcodes = set()

    def ops():
        for op in pickletools.genops(source):
            opcodes.add(op[0].name)
            yield op

    try:
        result = machine.run(ops())
    except PickleMalformed:
        _check_calls(machine, allowed)  # a refused call is named first
        raise
    except (ValueError, IndexError, KeyError, TypeError, struct.error,
            UnicodeDecodeError) as err:
        _check_calls(machine, allowed)
        raise PickleMalformed(
            f'malformed or truncated pickle ({type(err).__name__}: '
            f'{str(err)[:200]})') from None
    _check_calls(machine, allowed)
    storages = [_storage_record(node) for node in machine.storages]
    return PickleScan(result, storages, opcodes)


def torch_safe_globals(classes: Iterable[type] = ()) -> list:
    """What torch's weights-only unpickler must be allowed, for one load,
    beyond its defaults, to read what :func:`scan_pickle` passes: mmengine's
    ``HistoryBuffer``, :func:`history_buffer_getattr` as
    ``builtins.getattr``, ``bytes`` (``b''`` in protocol 2), numpy's array
    and scalar reconstructors and the plain numeric dtypes, and
    ``classes``."""
    from mmengine.logging import HistoryBuffer
    core = np._core if hasattr(np, '_core') else np.core
    functions = {
        ('multiarray', '_reconstruct'): core.multiarray._reconstruct,
        ('multiarray', 'scalar'): core.multiarray.scalar,
        ('numeric', '_frombuffer'): core.numeric._frombuffer,
    }
    entries = [HistoryBuffer, (history_buffer_getattr, 'builtins.getattr'),
               (bytes, 'builtins.bytes'), np.ndarray, np.dtype]
    for (module, name), func in functions.items():
        entries += [(func, full) for full in _numpy_names(module, name)]
    entries += sorted({type(np.dtype(t)) for t in NUMERIC_TYPESTRS},
                      key=str)
    return entries + list(classes)


# -- protocols 3 to 5, rewritten in the opcodes torch reads -------------------


class _Writer:
    """Pickles the symbols of a scanned pickle with protocol 2 opcodes that
    torch's weights-only unpickler reads (bytes as ``_codecs.encode`` of
    text, sets as ``set([...])``, ``HistoryBuffer``'s methods as
    ``getattr(HistoryBuffer, name)``), keeping shared objects shared."""

    max_depth = 100  # nesting levels; checkpoints have about 10

    def __init__(self):
        self.parts: List[bytes] = []
        self.memo: Dict[int, int] = {}
        self.alive: list = []  # what the memo's ids name stays alive
        self.open_calls: set = set()
        self.depth = 0

    def dump(self, obj) -> bytes:
        self.parts = [pickle.PROTO + b'\x02']
        self.write(obj)
        self.parts.append(pickle.STOP)
        return b''.join(self.parts)

    def write(self, obj):
        self.depth += 1
        if self.depth > self.max_depth:
            raise PickleRefused('it nests objects too deeply')
        try:
            self._write(obj)
        finally:
            self.depth -= 1

    def _write(self, obj):
        out = self.parts.append
        if obj is None:
            return out(pickle.NONE)
        if type(obj) is bool:
            return out(pickle.NEWTRUE if obj else pickle.NEWFALSE)
        if type(obj) is int:
            return out(_int_opcode(obj))
        if type(obj) is float:
            return out(pickle.BINFLOAT + struct.pack('>d', obj))
        if id(obj) in self.memo:
            index = self.memo[id(obj)]
            return out(pickle.BINGET + bytes([index]) if index < 256 else
                       pickle.LONG_BINGET + struct.pack('<I', index))
        if type(obj) is str:
            data = obj.encode('utf-8', 'surrogatepass')
            out(pickle.BINUNICODE + struct.pack('<I', len(data)) + data)
        elif type(obj) is bytes and not obj:
            self.call_global('builtins', 'bytes', ())
        elif type(obj) is bytes:
            self.call_global('_codecs', 'encode',
                             (obj.decode('latin-1'), 'latin1'))
        elif type(obj) is bytearray:
            self.call_global('builtins', 'bytearray', (bytes(obj), ))
        elif type(obj) is tuple:
            self.write_tuple(obj)
        elif isinstance(obj, Node):
            return self.write_node(obj)
        else:
            raise PickleRefused(f'it holds a {type(obj).__name__}')
        self.remember(obj)

    def remember(self, obj):
        if id(obj) in self.memo:  # a tuple that holds itself
            raise PickleRefused('it holds a recursive tuple')
        index = self.memo[id(obj)] = len(self.memo)
        self.alive.append(obj)
        self.parts.append(pickle.BINPUT + bytes([index]) if index < 256 else
                          pickle.LONG_BINPUT + struct.pack('<I', index))

    def write_tuple(self, items: tuple):
        if not items:
            return self.parts.append(pickle.EMPTY_TUPLE)
        self.parts.append(pickle.MARK)
        for item in items:
            self.write(item)
        self.parts.append(pickle.TUPLE)

    def write_items(self, items: list, opcode: bytes):
        if items:
            self.parts.append(pickle.MARK)
            for item in items:
                for part in (item if opcode == pickle.SETITEMS else (item, )):
                    self.write(part)
            self.parts.append(opcode)

    def call_global(self, module: str, name: str, args: tuple):
        self.parts.append(pickle.GLOBAL + f'{module}\n{name}\n'.encode())
        self.write_tuple(args)
        self.parts.append(pickle.REDUCE)

    def write_node(self, node: Node):
        out = self.parts.append
        if node.kind in ('list', 'dict'):
            out(pickle.EMPTY_LIST if node.kind == 'list' else
                pickle.EMPTY_DICT)
            self.remember(node)
            self.write_items(node.items, pickle.APPENDS
                             if node.kind == 'list' else pickle.SETITEMS)
        elif node.kind == 'set':
            items = Node('list')
            items.items = node.items
            self.call_global('builtins', 'set', (items, ))
            self.remember(node)
        elif node.kind == 'global' and node.name in _HISTORY_BUFFER_METHODS:
            # protocol 4 names a method by its qualified name
            module, _, name = HISTORY_BUFFER.rpartition('.')
            owner = Node('global', HISTORY_BUFFER, args=(module, name))
            self.call_global('builtins', 'getattr',
                             (owner, node.name.rpartition('.')[2]))
            self.remember(node)
        elif node.kind == 'global':
            out(pickle.GLOBAL + '{}\n{}\n'.format(*node.args).encode())
            self.remember(node)
        elif node.kind == 'storage':
            self.write_tuple(node.args)
            out(pickle.BINPERSID)
            self.remember(node)
        else:
            self.write_call(node)

    def write_call(self, node: Node):
        if id(node) in self.open_calls:
            raise PickleRefused('it passes an object to its own creation')
        self.open_calls.add(id(node))
        self.write(node.func)
        self.write_tuple(node.args)
        self.parts.append(pickle.NEWOBJ if node.new else pickle.REDUCE)
        self.open_calls.discard(id(node))
        self.remember(node)
        for state in node.builds:
            self.write(state)
            self.parts.append(pickle.BUILD)
        self.write_items(node.items, pickle.SETITEMS)


def _int_opcode(value: int) -> bytes:
    if 0 <= value < 256:
        return pickle.BININT1 + bytes([value])
    if 0 <= value < 65536:
        return pickle.BININT2 + struct.pack('<H', value)
    if -2**31 <= value < 2**31:
        return pickle.BININT + struct.pack('<i', value)
    data = pickle.encode_long(value)
    if len(data) > 255:
        raise PickleRefused('it holds an integer of more than 2000 bits')
    return pickle.LONG1 + bytes([len(data)]) + data


def rewrite_for_torch(scan: PickleScan, classes: Iterable[type] = ()) -> bytes:
    """The pickle of ``scan`` in protocol 2 opcodes torch's weights-only
    unpickler reads; scanned again, so it holds exactly what passed."""
    data = _Writer().dump(scan.result)
    again = scan_pickle(data, classes)
    assert not again.needs_rewrite, 'the rewrite uses opcodes torch lacks'
    return data
