"""Small helpers shared by the layers."""
from typing import Callable, Dict, Hashable, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import Tensor


def to_2tuple(size) -> Tuple[int, int]:
    """``7 -> (7, 7)``; a pair is returned as a tuple."""
    if isinstance(size, int):
        return (size, size)
    size = tuple(size)
    if len(size) != 2:
        raise ValueError(f'expected an int or a pair, got {size!r}')
    return size


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Zero-pad the bottom/right of a ``(B, C, H, W)`` map so that H and W are
    multiples of ``multiple`` (as mmdet pads images, so no pixel is lost)."""
    pad_h = -x.shape[-2] % multiple
    pad_w = -x.shape[-1] % multiple
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h))
    return x


def guess_native_size(h: int, w: int) -> Tuple[int, int]:
    """Spatial size whose real-FFT grid is ``(h, w)``: square if that fits
    (``h // 2 + 1 == w``), else the even width ``2 * (w - 1)``."""
    return (h, h) if h // 2 + 1 == w else (h, 2 * (w - 1))


class EvalCache:
    """Caches tensors derived from a parameter while a module is in eval mode.

    An entry is valid while the parameter keeps its storage, dtype and
    version counter, so in-place updates (optimizer steps, ``load_state_dict``)
    and ``.to()`` invalidate it. Nothing is cached while the result could be
    part of an autograd graph.
    """

    def __init__(self):
        self._store: Dict[Hashable, Tuple[tuple, Tensor]] = {}

    def clear(self):
        self._store.clear()

    @staticmethod
    def _token(param: Tensor) -> tuple:
        return (param._version, param.data_ptr(), param.dtype, param.device)

    def get(self, module: torch.nn.Module, param: Tensor, key: Hashable,
            compute: Callable[[], Tensor]) -> Tensor:
        cacheable = not module.training and not (torch.is_grad_enabled()
                                                 and param.requires_grad)
        if not cacheable:
            return compute()
        token = self._token(param)
        # sizes read off a traced tensor are tensors, not ints
        key = tuple(int(k) for k in key) if isinstance(key, tuple) else key
        hit = self._store.get(key)
        if hit is not None and hit[0] == token:
            return hit[1]
        value = compute().detach()
        self._store[key] = (token, value)
        return value


class CheckpointedBlock(nn.Module):
    """A block whose ``forward`` runs ``_forward`` through activation
    checkpointing (recomputed in the backward pass, saving memory) when
    ``self.with_cp`` is set and the input needs gradients."""
    with_cp = False

    def _forward(self, x: Tensor, *args) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor, *args) -> Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._forward, x, *args, use_reentrant=False)
        return self._forward(x, *args)
