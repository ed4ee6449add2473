"""Reading checkpoints and checking that they fit a model.

Every entry point reads checkpoints here: ``tools/test.py``, ``--resume`` and
``load_from``, ``init_cfg=dict(type='Pretrained')`` of any model (mmengine's
``CheckpointLoader`` reads every scheme through :func:`read_checkpoint` once
:func:`mmspectral.compat.route_checkpoint_loading` ran, which ``import
mmspectral`` does), the converters and the analysis tools; and every fit
check (converted weights, pretrained backbones, test and resume
checkpoints) follows :func:`check_fits`.

A checkpoint never runs code: a safetensors file holds nothing to unpickle;
a ``torch.save`` file's pickle is checked against what checkpoints hold
(:mod:`mmspectral.checkpoint_scan`) before torch unpickles it, weights-only,
with that allow-list for this load only. A URL (``http(s)://``,
``file://``, ``open-mmlab://``, ``torchvision://``, ...) is downloaded
without unpickling (:mod:`mmspectral.checkpoint_sources`) and the file read
the same way.
"""
import contextlib
import json
import os.path as osp
import pickle
import re
import tarfile
import tempfile
import warnings
import zipfile
from collections import OrderedDict
from typing import Callable, Iterable, List, Mapping, Optional, Union

import torch
from torch import Tensor

from mmspectral.checkpoint_scan import (PickleMalformed, PickleRefused,
                                        rewrite_for_torch, scan_pickle,
                                        torch_safe_globals)

__all__ = [
    'CheckpointError', 'is_remote', 'read_checkpoint', 'state_dict_of',
    'check_fits', 'check_dtypes', 'raise_unless_fits', 'size_mismatches',
    'non_finite_keys', 'check_finite', 'listing', 'SAFETENSORS_META_KEY'
]

KeyFilter = Union[None, bool, str, 're.Pattern', Callable[[str], bool]]
# the safetensors metadata entry holding a converted checkpoint's ``meta``
# (JSON)
SAFETENSORS_META_KEY = 'mmspectral_meta'


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, converted or loaded as asked."""


def is_remote(path: str) -> bool:
    return '://' in str(path)


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]


# torch's words for what its weights-only unpickler refused, and the advice
# around them that is left out (never: "rerun with weights_only=False")
_TORCH_REFUSALS = (
    (re.compile(r'Trying to load unsupported GLOBAL (\S+)'),
     'unsupported global {}'),
    (re.compile(r'GLOBAL (\S+) was not an allowed global'),
     'unsupported global {}'),
    (re.compile(r'Trying to call reduce for unrecognized function (.+)'),
     'a call of {}'),
    (re.compile(r'(Can only (?:build|create new object|append|SETITEM)'
                r'[^.]*)'), '{}'),
    (re.compile(r'(Unsupported operand \d+)'), '{}'),
    (re.compile(r'(Only persistent_load of storage is allowed[^.]*)'), '{}'),
)


def _refusal_reason(err: BaseException) -> str:
    """What torch's weights-only unpickler refused (the global it names),
    without its advice to turn the protection off."""
    text = str(err)
    for pattern, form in _TORCH_REFUSALS:
        match = pattern.search(text)
        if match:
            return form.format(match.group(1).strip().rstrip('.'))
    lines = [
        line.strip() for line in text.splitlines() if line.strip()
        and 'weights_only' not in line and 'safe_globals' not in line
    ]
    return lines[0] if lines else type(err).__name__


def read_checkpoint(path: str,
                    map_location='cpu',
                    safe_globals: Iterable[type] = ()) -> object:
    """Load the checkpoint at ``path``; nothing in it can run code.

    Args:
        path (str): A local file (``torch.save`` zip or legacy format, or
            ``.safetensors``), or a URL of a scheme mmengine's
            ``CheckpointLoader`` knows (``http(s)://``, ``file://``,
            ``open-mmlab://``, ``torchvision://``, ``mmcls://``, ...),
            downloaded to torch's hub cache without unpickling and read as a
            local file.
        map_location: As in :func:`torch.load`. Defaults to ``'cpu'``.
        safe_globals (Iterable[type]): Plain classes the file may also hold
            (created empty, then given a dict of attributes; e.g.
            ``argparse.Namespace`` of DeiT-style training scripts), for this
            read only.

    Returns:
        The checkpoint. A safetensors file gives ``{'state_dict': tensors,
        'meta': metadata}``, with no optimizer state or training progress.

    Raises:
        FileNotFoundError: No file at ``path``.
        CheckpointError: The file is empty, truncated, not a checkpoint, or
            holds objects checkpoints do not hold (such as code), or the URL
            cannot be downloaded; the message names the file and what was
            refused.
    """
    if is_remote(path):
        from mmspectral.checkpoint_sources import local_copy
        with local_copy(str(path)) as (local, adapt):
            return adapt(
                _read_file(local, str(path), map_location, safe_globals))
    return _read_file(
        osp.expanduser(str(path)), str(path), map_location, safe_globals)


def _read_file(path: str, name: str, map_location, classes) -> object:
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {name!r} not found')
    if osp.getsize(path) == 0:
        raise CheckpointError(f'{name} is empty (0 bytes): the save that '
                              'wrote it did not finish')
    kind = _file_format(path)
    if kind == 'safetensors':
        return _read_safetensors(path, name, map_location)
    unreadable = (f'{name} is not a readable PyTorch checkpoint (truncated '
                  'or corrupt?)')
    if kind is None:
        raise CheckpointError(f'{unreadable}: it is neither a zip archive, '
                              'a pickle nor a safetensors file')
    try:
        with _torch_loadable(path, name, kind, classes) as loadable, \
                _allowed_for_this_load(classes), warnings.catch_warnings():
            # a protocol 3 pickle without bytes is read as it is: checked
            warnings.filterwarnings('ignore', 'Detected pickle protocol')
            return torch.load(
                loadable, map_location=map_location, weights_only=True)
    except PickleMalformed as err:
        raise CheckpointError(f'{unreadable}: {err}') from None
    except PickleRefused as err:
        raise CheckpointError(
            f'{name} was refused: {err}; nothing in it was run') from None
    except pickle.UnpicklingError as err:
        if 'Unsupported operand' in str(err):  # not pickle data
            raise CheckpointError(
                f'{unreadable}: {_refusal_reason(err)}') from None
        raise CheckpointError(
            f'{name} was refused: it holds {_refusal_reason(err)}, which a '
            'weights-only load does not create; nothing in it was run'
        ) from None
    except CheckpointError:
        raise
    except Exception as err:  # truncated zip, foreign format, ...
        raise CheckpointError(
            f'{unreadable}: {_refusal_reason(err)}') from None


def _file_format(path: str) -> Optional[str]:
    """``'zip'`` (torch.save), ``'pickle'`` (torch's legacy format),
    ``'safetensors'``, or None, from the first bytes (and the name)."""
    with open(path, 'rb') as f:
        head = f.read(9)
    # safetensors: the header's size (8 bytes, little-endian; its first
    # byte may be 0x80), then the JSON header
    header_size = int.from_bytes(head[:8], 'little')
    if head[8:9] == b'{' and 2 <= header_size <= osp.getsize(path) - 8:
        return 'safetensors'
    if head.startswith(b'PK\x03\x04'):
        return 'zip'
    if head.startswith(b'\x80'):
        return 'pickle'
    return 'safetensors' if path.endswith('.safetensors') else None


def _read_safetensors(path: str, name: str, map_location) -> dict:
    """``{'state_dict': ..., 'meta': ...}`` of a safetensors file: its
    tensors, and its metadata (a converter's ``meta`` from JSON)."""
    try:
        from safetensors import SafetensorError, safe_open
    except ImportError:
        raise CheckpointError(f'{name} is a safetensors file: install the '
                              '`safetensors` package to read it') from None
    device = str(map_location) if isinstance(
        map_location, (str, torch.device)) else 'cpu'
    try:
        with safe_open(path, framework='pt', device=device) as f:
            metadata = dict(f.metadata() or {})
            state = OrderedDict((key, f.get_tensor(key)) for key in f.keys())
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f'{name} is not a readable safetensors file: '
                              f'{_first_line(err)}') from None
    meta = metadata
    if SAFETENSORS_META_KEY in metadata:
        try:
            meta = json.loads(metadata.pop(SAFETENSORS_META_KEY))
        except ValueError:
            raise CheckpointError(
                f'{name}: its {SAFETENSORS_META_KEY} metadata is not JSON'
            ) from None
    return {'state_dict': state, 'meta': meta}


@contextlib.contextmanager
def _allowed_for_this_load(classes):
    """torch's weights-only unpickler, allowed what checked pickles hold
    for the duration of one load (nothing stays in torch's process-wide
    list)."""
    present = set(torch.serialization.get_safe_globals())
    added = [g for g in torch_safe_globals(classes) if g not in present]
    with torch.serialization.safe_globals(added):
        yield


@contextlib.contextmanager
def _torch_loadable(path: str, name: str, kind: str, classes):
    """Check the pickle(s) of the ``torch.save`` file at ``path`` and yield
    what torch may load: the file, or, where its pickle uses opcodes
    torch's unpickler lacks (protocols 3 to 5), a copy with that pickle in
    protocol 2."""
    unreadable = f'{name} is not a readable PyTorch checkpoint'
    check = _check_zip if kind == 'zip' else _check_legacy
    rewrite = check(path, name, unreadable, classes)
    if rewrite is None:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix='mmspectral-ckpt-') as folder:
        copy = osp.join(folder, 'checkpoint.pth')
        rewrite(copy)
        yield copy


def _check_zip(path, name, unreadable, classes) -> Optional[Callable]:
    try:
        reader = torch._C.PyTorchFileReader(path)
        records = set(reader.get_all_records())
    except RuntimeError as err:
        raise CheckpointError(
            f'{unreadable} (truncated or corrupt?): {_first_line(err)}'
        ) from None
    if 'constants.pkl' in records or any(
            r.startswith('code/') for r in records):
        raise CheckpointError(
            f'{name} is a TorchScript archive (torch.jit.save), which holds '
            'code: it is not read as a checkpoint')
    if 'data.pkl' not in records:
        raise CheckpointError(f'{unreadable}: a zip archive without the '
                              'data.pkl that torch.save writes')
    # the very bytes torch's reader will unpickle
    scan = scan_pickle(reader.get_record('data.pkl'), classes)
    for key, nbytes in scan.storages:
        record = f'data/{key}'
        if record not in records or reader.get_record_size(record) < nbytes:
            raise CheckpointError(
                f'{unreadable}: tensor storage {key!r} claims {nbytes} '
                'bytes the archive does not hold')
    if not scan.needs_rewrite:
        return None
    data = rewrite_for_torch(scan, classes)

    def rewrite(copy):
        with zipfile.ZipFile(path) as source, \
                zipfile.ZipFile(copy, 'w', zipfile.ZIP_STORED) as target:
            for info in source.infolist():
                is_data = info.filename.split('/', 1)[-1] == 'data.pkl'
                target.writestr(info.filename,
                                data if is_data else source.read(info))
    return rewrite


def _check_legacy(path, name, unreadable, classes) -> Optional[Callable]:
    """torch's legacy format: the pickles of the magic number, protocol
    version, system info, the object and its storage keys, then the
    storages' raw data."""
    if tarfile.is_tarfile(path):
        raise CheckpointError(f'{name} is a tar archive (torch < 0.4 '
                              'checkpoints), which is not read')
    expected = (torch.serialization.MAGIC_NUMBER,
                torch.serialization.PROTOCOL_VERSION)
    parts, storages, needs_rewrite = [], [], False
    with open(path, 'rb') as f:
        for index in range(5):
            start = f.tell()
            scan = scan_pickle(f, classes)
            if index < 2 and not (type(scan.result) is int
                                  and scan.result == expected[index]):
                raise CheckpointError(f'{unreadable}: a pickle, but not '
                                      'one torch.save wrote')
            storages += scan.storages
            needs_rewrite |= scan.needs_rewrite
            if scan.needs_rewrite:
                parts.append(rewrite_for_torch(scan, classes))
            else:
                end = f.tell()
                f.seek(start)
                parts.append(f.read(end - start))
        data_start = f.tell()
    data_bytes = osp.getsize(path) - data_start
    if sum(dict(storages).values()) > data_bytes:
        raise CheckpointError(f'{unreadable}: its tensor storages claim more '
                              f'bytes than the file holds ({data_bytes})')
    if not needs_rewrite:
        return None

    def rewrite(copy):
        with open(path, 'rb') as source, open(copy, 'wb') as target:
            target.write(b''.join(parts))
            source.seek(data_start)
            while True:
                chunk = source.read(1 << 24)
                if not chunk:
                    break
                target.write(chunk)
    return rewrite


def state_dict_of(checkpoint,
                  path: str = 'the checkpoint',
                  prefix: Optional[str] = None,
                  keys: Iterable[str] = ('state_dict', 'model')
                  ) -> 'OrderedDict[str, Tensor]':
    """The weights of a loaded checkpoint.

    Takes the first of ``checkpoint[k]`` for ``k`` in ``keys`` that is a dict
    (mmengine: ``'state_dict'``; official and DeiT-style scripts:
    ``'model'``), or the dict itself; strips a ``module.`` prefix left by
    DDP and, with ``prefix``, keeps only the keys under it, without the
    prefix.

    Raises:
        CheckpointError: No dict of tensors, or no key under ``prefix``.
    """
    state = checkpoint
    if isinstance(checkpoint, dict):
        for key in keys:
            if isinstance(checkpoint.get(key), dict):
                state = checkpoint[key]
                break
    if not isinstance(state, dict) or not state or not all(
            isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(
            f'{path} holds no state dict (expected a dict of tensors, or one '
            f'under {" or ".join(map(repr, keys))})')
    state = OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v)
        for k, v in state.items())
    if prefix:
        state = OrderedDict((k[len(prefix):], v) for k, v in state.items()
                            if k.startswith(prefix))
        if not state:
            raise CheckpointError(
                f'{path}: no key starts with the prefix {prefix!r}')
    return state


def listing(title: str, items: List[str], shown: int = 8) -> str:
    """``'  title (n): a, b, ... '`` for error messages."""
    more = ' ...' if len(items) > shown else ''
    return f'  {title} ({len(items)}): ' + ', '.join(items[:shown]) + more


def _matcher(allowed: KeyFilter) -> Callable[[str], bool]:
    if allowed is None or allowed is False:
        return lambda key: False
    if allowed is True:
        return lambda key: True
    if isinstance(allowed, str):
        allowed = re.compile(allowed)
    if isinstance(allowed, re.Pattern):
        return lambda key: allowed.search(key) is not None
    return allowed


def check_fits(own: Mapping[str, Tensor],
               state: Mapping[str, Tensor],
               what: str,
               source: str,
               missing_ok: KeyFilter = None,
               unexpected_ok: KeyFilter = None) -> List[str]:
    """Check that ``state`` fits a model whose state dict is ``own``.

    Every model key must be in ``state`` with the same shape and a dtype of
    the same kind (:func:`check_dtypes`), and every key of ``state`` must be
    a model key; ``missing_ok`` / ``unexpected_ok`` (True, a regex, or a
    predicate on the key) exempt keys from the two membership rules, never
    from the shape and dtype rules. BatchNorm's ``num_batches_tracked``
    counters may always be missing.

    Returns:
        list[str]: The exempted unexpected keys (the caller skips them).

    Raises:
        CheckpointError: Naming ``source``, ``what`` and the offending keys.
    """
    check_dtypes(own, state, what, source)
    unexpected_ok = _matcher(unexpected_ok)
    unused = [k for k in state if k not in own]
    raise_unless_fits(
        what,
        source,
        missing=[k for k in own if k not in state],
        unexpected=[k for k in unused if not unexpected_ok(k)],
        mismatched=[
            f'{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}'
            for k in own if k in state and state[k].shape != own[k].shape
        ],
        missing_ok=missing_ok)
    return [k for k in unused if unexpected_ok(k)]


def raise_unless_fits(what: str,
                      source: str,
                      missing: Iterable[str] = (),
                      unexpected: Iterable[str] = (),
                      mismatched: Iterable[str] = (),
                      missing_ok: KeyFilter = None):
    """Raise :class:`CheckpointError` listing the model keys ``source``
    lacks (but those ``missing_ok`` exempts and BatchNorm counters), the keys
    the model has no place for, and the shape mismatches, if any."""
    missing_ok = _matcher(missing_ok)
    missing = [
        k for k in missing
        if not k.endswith('num_batches_tracked') and not missing_ok(k)
    ]
    unexpected, mismatched = list(unexpected), list(mismatched)
    if not (missing or unexpected or mismatched):
        return
    lines = [f'{source} does not fit {what} (was it made for another arch '
             'or config?):']
    for title, items in (
            ('model weights missing from the checkpoint', missing),
            ('checkpoint weights the model has no place for', unexpected),
            ('shape mismatches (checkpoint vs model)', mismatched)):
        if items:
            lines.append(listing(title, items))
    raise CheckpointError('\n'.join(lines))


def _dtype_kind(tensor: Tensor) -> str:
    if tensor.is_floating_point():
        return 'floating'
    return 'complex' if tensor.is_complex() else 'integer'


def check_dtypes(own: Mapping[str, Tensor], state: Mapping[str, Tensor],
                 what: str, source: str):
    """Raise :class:`CheckpointError` naming the keys of ``state`` that
    cannot be the model's weights: a tensor without data (saved from the
    meta device), or an integer, bool or complex tensor where the model has
    a floating-point one (or the other way round); loading would copy them
    in silently, cast, and the model would be wrong."""
    meta = [k for k, v in state.items() if isinstance(v, Tensor) and v.is_meta]
    kinds = [
        f'{k} ({state[k].dtype} vs {own[k].dtype})' for k in own
        if isinstance(state.get(k), Tensor) and not state[k].is_meta
        and _dtype_kind(state[k]) != _dtype_kind(own[k])
    ]
    if not (meta or kinds):
        return
    lines = [f'{source} cannot be the weights of {what}:']
    if meta:
        lines.append(listing('tensors without data (saved from the meta '
                             'device)', meta))
    if kinds:
        lines.append(listing('dtype mismatches (checkpoint vs model)', kinds))
    raise CheckpointError('\n'.join(lines))


_SIZE_MISMATCH = re.compile(
    r'size mismatch for ([^:]+): copying a param with shape '
    r'torch\.Size\(\[([^\]]*)\]\) from checkpoint, the shape in current '
    r'model is torch\.Size\(\[([^\]]*)\]\)')


def size_mismatches(err: RuntimeError) -> List[str]:
    """``'key (checkpoint shape) vs (model shape)'`` for each size mismatch
    that :meth:`torch.nn.Module.load_state_dict` reported in ``err``."""
    return [
        f'{key} ({src}) vs ({dst})'
        for key, src, dst in _SIZE_MISMATCH.findall(str(err))
    ]


def non_finite_keys(state: Mapping[str, Tensor]) -> List[str]:
    """Keys of floating-point tensors holding NaN or infinity."""
    return [
        k for k, v in state.items()
        if isinstance(v, Tensor) and not v.is_meta and (
            v.is_floating_point() or v.is_complex())
        and not bool(torch.isfinite(v).all())
    ]


def check_finite(state: Mapping[str, Tensor], source: str):
    """Raise :class:`CheckpointError` if any weight is NaN or infinite, or
    holds no data at all (a meta tensor)."""
    meta = [k for k, v in state.items() if isinstance(v, Tensor) and v.is_meta]
    if meta:
        raise CheckpointError(
            f'{source} holds tensors without data (saved from the meta '
            'device), which cannot be weights:\n' + listing(
                'meta tensors', meta))
    bad = non_finite_keys(state)
    if bad:
        raise CheckpointError(
            f'{source} holds NaN or infinite weights (the run that saved it '
            'diverged):\n' + listing('non-finite tensors', bad))
