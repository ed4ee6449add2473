"""The adaptive Fourier neural operator (AFNO) token mixer.

Guibas et al., ICLR 2022, https://arxiv.org/abs/2111.13587; reproduces
``AFNO2D`` of https://github.com/NVlabs/AFNO-transformer.

The channels of the real FFT of a map are split into blocks, and one small
complex two-layer MLP per block, shared by every frequency, mixes them;
softshrink then sparsifies the result before the inverse FFT, and the layer
adds its own input. Unlike a global filter it has no spatial-size parameters,
so any map size works without resizing anything.
"""
import contextlib
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .spectral import (SpectralLayer, compute_dtype, irdft2,
                       kept_mode_indices, mix_valid_regions, rdft2)

__all__ = ['AFNO2d', 'kept_mode_indices']


class AFNO2d(SpectralLayer):
    """AFNO token mixer on ``(B, H, W, C)`` maps of any size.

    The transforms run on the spectral engine as ``impl`` names (see
    :mod:`.spectral`): with ``'fft'`` the FFT and the frequency MLP run in
    float32 with autocast off, whatever the input dtype, and the output is
    cast back; the matrix forms compute in the autocast dtype under
    autocast (and return it), else in float32. The layer adds its input to
    the result.

    Args:
        embed_dims (int): Channels ``C``.
        num_blocks (int): Blocks of the block-diagonal weights; ``C`` must be
            a multiple. Defaults to 8.
        sparsity_threshold (float): Softshrink ``lambda``. Defaults to 0.01.
        hard_thresholding_fraction (float): Fraction of the lowest frequencies
            per axis that are processed (see :func:`kept_mode_indices`); the
            others are set to zero and cost nothing. Defaults to 1.
        hidden_size_factor (int): Hidden/input width of the MLP. Defaults
            to 1.
        init_scale (float): Std of the normal initialisation. Defaults to
            0.02, as in the official code.
        impl (str): How the transforms are computed, one of ``'auto'``,
            ``'fft'``, ``'dft'``, ``'factored'`` (for this layer the same
            products as ``'dft'``: its MLP needs the standard half
            spectrum). Defaults to ``'auto'``.
    """

    def __init__(self,
                 embed_dims: int,
                 num_blocks: int = 8,
                 sparsity_threshold: float = 0.01,
                 hard_thresholding_fraction: float = 1.,
                 hidden_size_factor: int = 1,
                 init_scale: float = 0.02,
                 impl: str = 'auto'):
        super().__init__()
        if embed_dims % num_blocks:
            raise ValueError(f'AFNO2d: embed_dims {embed_dims} is not a '
                             f'multiple of num_blocks {num_blocks}')
        if not 0 < hard_thresholding_fraction <= 1:
            raise ValueError('AFNO2d: hard_thresholding_fraction must be in '
                             f'(0, 1], got {hard_thresholding_fraction}')
        self.embed_dims = embed_dims
        self.num_blocks = num_blocks
        self.sparsity_threshold = sparsity_threshold
        self.hard_thresholding_fraction = hard_thresholding_fraction
        self.impl = impl
        block = embed_dims // num_blocks
        hidden = block * hidden_size_factor
        # index 0 holds the real parts, index 1 the imaginary parts
        self.w1 = nn.Parameter(init_scale *
                               torch.randn(2, num_blocks, block, hidden))
        self.b1 = nn.Parameter(init_scale * torch.randn(2, num_blocks, hidden))
        self.w2 = nn.Parameter(init_scale *
                               torch.randn(2, num_blocks, hidden, block))
        self.b2 = nn.Parameter(init_scale * torch.randn(2, num_blocks, block))

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, num_blocks={self.num_blocks}, '
                f'sparsity_threshold={self.sparsity_threshold}, '
                'hard_thresholding_fraction='
                f'{self.hard_thresholding_fraction}, impl={self.impl!r}')

    def kept_modes(self, size: Tuple[int, int]):
        """The kept frequency rows (a tuple, None: all) and columns at
        ``size``."""
        if self.hard_thresholding_fraction >= 1:
            return None, size[1] // 2 + 1
        rows, cols = kept_mode_indices(*size, self.hard_thresholding_fraction)
        return tuple(rows.tolist()), cols

    def frequency_mlp(self, re: Tensor, im: Tensor) -> Tuple[Tensor, Tensor]:
        """The block MLP on the real and imaginary parts ``(..., C)`` of
        the kept frequencies, in real arithmetic: ``softshrink(W2 relu(W1 x
        + b1) + b2)``, ReLU and softshrink on each part separately."""
        shape, dtype = re.shape, re.dtype
        w1, b1, w2, b2 = (p.to(dtype)
                          for p in (self.w1, self.b1, self.w2, self.b2))
        # (blocks, N, block): one batched product per block
        re, im = (t.reshape(-1, self.num_blocks,
                            shape[-1] // self.num_blocks).transpose(0, 1)
                  for t in (re, im))
        hr = F.relu(re @ w1[0] - im @ w1[1] + b1[0].unsqueeze(1).to(re))
        hi = F.relu(re @ w1[1] + im @ w1[0] + b1[1].unsqueeze(1).to(re))
        re = hr @ w2[0] - hi @ w2[1] + b2[0].unsqueeze(1).to(hr)
        im = hr @ w2[1] + hi @ w2[0] + b2[1].unsqueeze(1).to(hr)
        re, im = (F.softshrink(t, self.sparsity_threshold).transpose(
            0, 1).reshape(shape) for t in (re, im))
        return re, im

    def forward(self, x: Tensor,
                valid_sizes: Optional[Sequence[Tuple[int, int]]] = None
                ) -> Tensor:
        """Mix ``x`` and add it; with ``valid_sizes`` (one ``(h, w)`` per
        image) each image is mixed over its own top-left region only (the
        mixing is zero beyond)."""
        if x.dim() != 4 or x.shape[-1] != self.embed_dims:
            raise ValueError(f'AFNO2d expects a (B, H, W, {self.embed_dims}) '
                             f'tensor, got shape {tuple(x.shape)}')
        if valid_sizes is not None:
            return mix_valid_regions(x, valid_sizes, (1, 2), self._mix) + x
        return self._mix(x) + x

    def _mix(self, x: Tensor) -> Tensor:
        if not isinstance(self.impl, str):  # a lowering, see mmspectral.deploy
            return self.impl.afno(self, x).to(x.dtype)
        impl = self.call_impl(x)
        size = (x.shape[1], x.shape[2])
        fraction = self.hard_thresholding_fraction
        if impl != 'fft':
            dtype, context = compute_dtype(x), contextlib.nullcontext()
        else:
            dtype = torch.float32
            context = torch.autocast(x.device.type, enabled=False)
        with context:
            spectrum = rdft2(x, fraction, impl, dtype)
            re, im = self.frequency_mlp(spectrum.select(2, 0),
                                        spectrum.select(2, 1))
            out = irdft2(torch.stack([re, im], 2), size, fraction, impl,
                         dtype)
        return out.to(x.dtype) if impl == 'fft' else out
