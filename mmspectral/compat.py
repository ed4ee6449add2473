"""Make the tested stack's known incompatibilities harmless, and its
checkpoint loading safe, without editing any installed package.

* torch >= 2.6 loads checkpoints with ``weights_only=True``. mmengine 0.10.7
  saves its message hub (``HistoryBuffer`` objects holding numpy arrays) in
  every checkpoint, so ``load_checkpoint`` and ``--resume`` fail on its own
  files. What such checkpoints hold is allow-listed here: the
  ``HistoryBuffer`` class, numpy's array/scalar/dtype reconstructors, and,
  under the name ``builtins.getattr``, :func:`history_buffer_getattr`: a
  buffer pickles its statistics methods as ``getattr(HistoryBuffer,
  'mean')``, and that is all the stand-in returns. The real ``getattr`` is
  never allow-listed: with it a pickle reaches any attribute
  (``getattr(getattr, '__self__')`` is the ``builtins`` module, so ``exec``),
  and ``HistoryBuffer.__setstate__``, which updates the instance
  ``__dict__``, would let it plant such a callable as ``__setstate__`` for
  the unpickler to call.
* mmengine's loader of local checkpoint files calls ``torch.load`` without
  ``weights_only``, so an environment with
  ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` or an older torch would unpickle
  anything. It is replaced by :func:`mmspectral.checkpoint.read_checkpoint`
  (weights-only always, and errors that name the file), so ``--resume``,
  ``load_from`` and ``init_cfg=dict(type='Pretrained')`` of any model read
  local files through it.
"""
import pickle

import numpy as np
import torch

__all__ = ['allow_mmengine_checkpoints', 'history_buffer_getattr']


def _numpy_globals() -> list:
    """numpy objects that pickled arrays and scalars refer to, under both the
    numpy 1 (``numpy.core``) and numpy 2 (``numpy._core``) module names."""
    multiarray = np._core.multiarray if hasattr(np, '_core') else \
        np.core.multiarray
    entries = [np.ndarray, np.dtype]
    for name in ('_reconstruct', 'scalar'):
        func = getattr(multiarray, name)
        entries += [(func, f'numpy.core.multiarray.{name}'),
                    (func, f'numpy._core.multiarray.{name}')]
    # numpy >= 1.25 pickles a dtype through its class, e.g. Float64DType
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        entries += [
            getattr(dtypes, name) for name in dir(dtypes)
            if name.endswith('DType') and isinstance(
                getattr(dtypes, name), type)
        ]
    return entries


# what HistoryBuffer._set_default_statistics registers
_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


def history_buffer_getattr(obj, name: str):
    """``getattr`` for unpickling, limited to ``HistoryBuffer``'s own
    statistics methods; anything else is refused."""
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_STATISTICS:
        return HistoryBuffer.__dict__[name]
    owner = getattr(obj, '__name__', type(obj).__name__)
    raise pickle.UnpicklingError(
        f'Unsupported operation: getattr({owner}, {name!r}) is not '
        'something an mmengine checkpoint holds')


def allow_mmengine_checkpoints():
    """Allow-list what mmengine checkpoints hold for weights-only loading."""
    from mmengine.logging import HistoryBuffer
    torch.serialization.add_safe_globals(
        [HistoryBuffer, (history_buffer_getattr, 'builtins.getattr')] +
        _numpy_globals())


def load_from_local_weights_only(filename, map_location=None):
    from mmspectral.checkpoint import read_checkpoint
    return read_checkpoint(filename, map_location)


def route_local_loading():
    """Make mmengine read local checkpoint files with
    :func:`mmspectral.checkpoint.read_checkpoint`."""
    from mmengine.runner import CheckpointLoader
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local_weights_only, force=True)


allow_mmengine_checkpoints()
route_local_loading()
