"""Small helpers shared by the layers."""
import itertools
import weakref
from collections import OrderedDict
from typing import Callable, Hashable, Optional, Tuple

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


class ResizeCache:
    """Tensors derived from a parameter for each input size (a resized
    filter or position embedding), kept while a module is in eval mode.

    At most ``max_entries`` sizes are kept, the least recently used going
    first, so memory stays bounded however many sizes a test set or
    multi-scale testing brings; ``0`` keeps none. An entry is only used while
    the parameter holds the values it was computed from: a snapshot of the
    parameter is compared on every lookup (one pass over the parameter, small
    next to the layer's work), so optimizer steps, ``load_state_dict``,
    ``.to()``, in-place edits and ``param.data`` swaps (custom EMA, weight
    averaging) all invalidate it. Nothing is cached while the result could be
    part of an autograd graph, or inside ``torch.compile`` (the compiled
    graph computes it) unless a spectral op looks the cache up where it runs
    (by its :attr:`token`).

    Args:
        max_entries (int): Input sizes kept. Defaults to 2.
    """

    _tokens = itertools.count()
    _registry: 'weakref.WeakValueDictionary[int, ResizeCache]' = \
        weakref.WeakValueDictionary()

    def __init__(self, max_entries: int = 2):
        self.max_entries = max_entries
        self._store: 'OrderedDict[Hashable, object]' = OrderedDict()
        self._snapshot: Optional[Tensor] = None
        #: names this cache for :meth:`find` (a spectral op gets the token,
        #: as its cached values are looked up where the op runs)
        self.token = next(self._tokens)
        self._registry[self.token] = self

    @classmethod
    def find(cls, token: int) -> Optional['ResizeCache']:
        """The cache holding ``token``, or None (``token < 0``: none)."""
        return cls._registry.get(token) if token >= 0 else None

    def __deepcopy__(self, memo):
        return ResizeCache(self.max_entries)  # a copy starts empty

    def __getstate__(self):
        return dict(max_entries=self.max_entries)

    def __setstate__(self, state):
        self.__init__(state['max_entries'])

    @property
    def max_entries(self) -> int:
        return self._max_entries

    @max_entries.setter
    def max_entries(self, value: int):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError('the resize cache size must be an int >= 0, '
                             f'got {value!r}')
        self._max_entries = value
        if hasattr(self, '_store'):
            self._evict()

    def __len__(self) -> int:
        return len(self._store)

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached tensors."""
        return sum(
            t.numel() * t.element_size() for value in self._store.values()
            for t in (value.values() if isinstance(value, dict) else [value]))

    def clear(self):
        self._store.clear()
        self._snapshot = None

    def _evict(self):
        while len(self._store) > self._max_entries:
            self._store.popitem(last=False)

    def _holds_values_of(self, param: Tensor) -> bool:
        snap = self._snapshot
        return (snap is not None and snap.shape == param.shape
                and snap.dtype == param.dtype and snap.device == param.device
                and torch.equal(snap, param))

    def usable(self, module: torch.nn.Module, param: Tensor) -> bool:
        """Whether values derived from ``param`` may be kept for
        ``module`` now: in eval mode, outside autograd, with a bound above
        0."""
        return (self._max_entries > 0 and not module.training
                and not (torch.is_grad_enabled() and param.requires_grad))

    def get(self, module: torch.nn.Module, param: Tensor, key: Hashable,
            compute: Callable[[], Tensor]) -> Tensor:
        """``compute()``, kept for ``key`` while :meth:`usable` (and not
        inside ``torch.compile``, whose graph computes it)."""
        if not self.usable(module, param) or torch.compiler.is_compiling():
            return compute()
        # sizes read off a traced tensor are tensors, not ints
        key = tuple(int(k) for k in key) if isinstance(key, tuple) else key
        return self.lookup(param, key, compute)

    def lookup(self, param: Tensor, key: Hashable,
               compute: Callable[[], object]):
        """The value kept for ``key`` while ``param`` holds the values it
        was computed from, else ``compute()`` (detached), kept."""
        with torch.no_grad():
            if not self._holds_values_of(param):
                self.clear()
                self._snapshot = param.detach().clone()
        value = self._store.get(key)
        if value is None:
            value = compute()
            if isinstance(value, Tensor):
                value = value.detach()
            self._store[key] = value
            self._evict()
        else:
            self._store.move_to_end(key)
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
