"""Make the tested stack's known incompatibilities harmless, without editing
any installed package.

* torch >= 2.6 loads checkpoints with ``weights_only=True``. mmengine 0.10.7
  saves its message hub (``HistoryBuffer`` objects holding numpy arrays) in
  every checkpoint, so ``load_checkpoint`` and ``--resume`` fail on its own
  files. The few globals such checkpoints hold are allow-listed here: the
  ``HistoryBuffer`` class, numpy's array/scalar/dtype reconstructors, and
  ``getattr`` (a buffer pickles its statistics methods as
  ``getattr(HistoryBuffer, 'mean')``). Loading stays weights-only: the
  unpickler still calls nothing but allow-listed callables, so an attribute
  fetched with ``getattr`` can be stored but never called, and a checkpoint
  cannot run code.
"""
import numpy as np
import torch

__all__ = ['allow_mmengine_checkpoints']


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


def allow_mmengine_checkpoints():
    """Allow-list what mmengine checkpoints hold for weights-only loading."""
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is None:  # torch < 2.4 loads everything anyway
        return
    from mmengine.logging import HistoryBuffer
    add_safe_globals([HistoryBuffer, getattr] + _numpy_globals())


allow_mmengine_checkpoints()
