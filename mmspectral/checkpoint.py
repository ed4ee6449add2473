"""Reading checkpoints and checking that they fit a model.

Every entry point reads checkpoints here: ``tools/test.py``, ``--resume`` and
``load_from`` (mmengine's loader for local files is this reader once
mmspectral is imported, see :mod:`mmspectral.compat`),
``init_cfg=dict(type='Pretrained')`` of the backbones, the converters and the
analysis tools; and every fit check (converted weights, pretrained backbones,
test and resume checkpoints) follows :func:`check_fits`.

Loading is always weights-only: the unpickler creates tensors, containers,
numbers, strings and the few allow-listed classes of mmengine checkpoints,
and calls nothing else, so a checkpoint cannot run code.
"""
import os.path as osp
import pickle
import re
from collections import OrderedDict
from typing import Callable, Iterable, List, Mapping, Optional, Union

import torch
from torch import Tensor

__all__ = [
    'CheckpointError', 'is_remote', 'read_checkpoint', 'state_dict_of',
    'check_fits', 'raise_unless_fits', 'size_mismatches', 'non_finite_keys',
    'check_finite', 'listing'
]

KeyFilter = Union[None, bool, str, 're.Pattern', Callable[[str], bool]]


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, converted or loaded as asked."""


def is_remote(path: str) -> bool:
    return '://' in str(path)


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]


def _refusal_reason(err: pickle.UnpicklingError) -> str:
    """What torch's weights-only unpickler refused, without its advice to
    turn the protection off."""
    for line in str(err).splitlines():
        line = line.strip()
        if line.startswith(('WeightsUnpickler error:', 'Unsupported')):
            return line.replace('WeightsUnpickler error: ', '')
    return _first_line(err)


def read_checkpoint(path: str,
                    map_location='cpu',
                    safe_globals: Iterable = ()) -> object:
    """Load the checkpoint at ``path``, weights-only.

    Args:
        path (str): A local file, or a URL that mmengine's
            ``CheckpointLoader`` reads (``http(s)://``, ``open-mmlab://``,
            ...).
        map_location: As in :func:`torch.load`. Defaults to ``'cpu'``.
        safe_globals (Iterable): Extra classes the file may hold (e.g.
            ``argparse.Namespace`` of DeiT-style training scripts), allowed
            for this read only.

    Raises:
        FileNotFoundError: No file at ``path``.
        CheckpointError: The file is empty, truncated, not a PyTorch
            checkpoint, or holds objects weights-only loading refuses (such
            as code); the message names the file.
    """
    if is_remote(path):
        from mmengine.runner import CheckpointLoader
        return CheckpointLoader.load_checkpoint(path, map_location)
    path = osp.expanduser(str(path))
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path!r} not found')
    if osp.getsize(path) == 0:
        raise CheckpointError(f'{path} is empty (0 bytes): the save that '
                              'wrote it did not finish')
    with open(path, 'rb') as f:
        magic = f.read(4)
    unreadable = (f'{path} is not a readable PyTorch checkpoint (truncated '
                  'or corrupt?)')
    # torch.save writes a zip archive; old torch and raw pickles start with
    # the pickle protocol opcode
    if not magic.startswith((b'PK\x03\x04', b'\x80')):
        raise CheckpointError(f'{unreadable}: it is neither a zip archive '
                              'nor a pickle')
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(
                path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if 'Unsupported operand' in str(err):  # not pickle data
            raise CheckpointError(
                f'{unreadable}: {_refusal_reason(err)}') from None
        raise CheckpointError(
            f'{path} was refused: it holds objects that a weights-only load '
            f'does not create ({_refusal_reason(err)}); nothing in it was '
            'run') from None
    except Exception as err:  # truncated zip, foreign format, ...
        raise CheckpointError(f'{unreadable}: {_first_line(err)}') from None


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

    Every model key must be in ``state`` with the same shape, and every key
    of ``state`` must be a model key; ``missing_ok`` / ``unexpected_ok``
    (True, a regex, or a predicate on the key) exempt keys from the two
    membership rules, never from the shape rule. BatchNorm's
    ``num_batches_tracked`` counters may always be missing.

    Returns:
        list[str]: The exempted unexpected keys (the caller skips them).

    Raises:
        CheckpointError: Naming ``source``, ``what`` and the offending keys.
    """
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
        if isinstance(v, Tensor) and (v.is_floating_point() or v.is_complex())
        and not bool(torch.isfinite(v).all())
    ]


def check_finite(state: Mapping[str, Tensor], source: str):
    """Raise :class:`CheckpointError` if any weight is NaN or infinite."""
    bad = non_finite_keys(state)
    if bad:
        raise CheckpointError(
            f'{source} holds NaN or infinite weights (the run that saved it '
            'diverged):\n' + listing('non-finite tensors', bad))
