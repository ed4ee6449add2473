"""The adaptive Fourier neural operator (AFNO) token mixer.

Guibas et al., ICLR 2022, https://arxiv.org/abs/2111.13587; reproduces
``AFNO2D`` of https://github.com/NVlabs/AFNO-transformer.

The channels of the real FFT of a map are split into blocks, and one small
complex two-layer MLP per block, shared by every frequency, mixes them;
softshrink then sparsifies the result before the inverse FFT, and the layer
adds its own input. Unlike a global filter it has no spatial-size parameters,
so any map size works without resizing anything.
"""
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmspectral.deploy.lowering import active_lowering


def kept_mode_indices(height: int, width: int,
                      fraction: float) -> Tuple[Tensor, int]:
    """The lowest frequencies an AFNO layer keeps on the ``rfft2`` grid of an
    ``(height, width)`` map.

    The fraction applies to each axis of the actual frequency grid, in units
    of its Nyquist index: rows whose frequency index ``k`` (FFT order
    ``0, 1, ..., -1``) has ``|k| <= int(fraction * (height // 2))``, and the
    half-spectrum columns ``0 .. int(fraction * (width // 2))``. So a fraction
    ``f`` keeps about ``f**2`` of the modes, and the kept rows are symmetric
    (``k`` and ``-k`` together), as a real signal's spectrum is. (The
    reference code derives one count from the token number ``H * W`` and cuts
    only columns, which keeps every mode until ``f`` is very small, whatever
    the shape.)

    Returns:
        tuple[Tensor, int]: Sorted row indices and the number of columns.
    """
    max_row = int(fraction * (height // 2))
    index = torch.fft.fftfreq(height) * height
    rows = torch.nonzero(index.round().abs() <= max_row).flatten()
    return rows, int(fraction * (width // 2)) + 1


class AFNO2d(nn.Module):
    """AFNO token mixer on ``(B, H, W, C)`` maps of any size.

    The FFT and the frequency MLP run in float32 with autocast off, whatever
    the input dtype; the output is cast back and the input added to it.

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
    """

    def __init__(self,
                 embed_dims: int,
                 num_blocks: int = 8,
                 sparsity_threshold: float = 0.01,
                 hard_thresholding_fraction: float = 1.,
                 hidden_size_factor: int = 1,
                 init_scale: float = 0.02):
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
                f'{self.hard_thresholding_fraction}')

    @staticmethod
    def _complex(weight: Tensor) -> Tensor:
        return torch.complex(weight[0].float(), weight[1].float())

    def _frequency_mlp(self, spectrum: Tensor) -> Tensor:
        """The block MLP on ``(..., C)`` complex frequencies."""
        shape = spectrum.shape
        x = spectrum.reshape(*shape[:-1], self.num_blocks, -1)
        x = torch.einsum('...bi,bio->...bo', x, self._complex(self.w1))
        x = x + self._complex(self.b1)
        # ReLU acts on the real and imaginary parts separately
        x = torch.complex(F.relu(x.real), F.relu(x.imag))
        x = torch.einsum('...bi,bio->...bo', x, self._complex(self.w2))
        x = x + self._complex(self.b2)
        x = torch.complex(
            F.softshrink(x.real, self.sparsity_threshold),
            F.softshrink(x.imag, self.sparsity_threshold))
        return x.reshape(shape)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[-1] != self.embed_dims:
            raise ValueError(f'AFNO2d expects a (B, H, W, {self.embed_dims}) '
                             f'tensor, got shape {tuple(x.shape)}')
        lowering = active_lowering()
        if lowering is not None:  # exporting: see mmspectral.deploy
            return lowering.afno(self, x).to(x.dtype) + x
        height, width = x.shape[1:3]
        with torch.autocast(device_type=x.device.type, enabled=False):
            spectrum = torch.fft.rfft2(x.float(), dim=(1, 2), norm='ortho')
            if self.hard_thresholding_fraction >= 1:
                spectrum = self._frequency_mlp(spectrum)
            else:
                rows, cols = kept_mode_indices(
                    height, width, self.hard_thresholding_fraction)
                rows = rows.to(x.device)
                kept = self._frequency_mlp(spectrum[:, rows, :cols])
                spectrum = torch.zeros_like(spectrum)
                spectrum[:, rows, :cols] = kept
            out = torch.fft.irfft2(
                spectrum, s=(height, width), dim=(1, 2), norm='ortho')
        return out.to(x.dtype) + x
