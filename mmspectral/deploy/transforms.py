"""The 2-D real FFT pair of the spectral layers as the ONNX ``DFT`` operator
(the ``'dft'`` lowering; the ``'matmul'`` one is the spectral engine's
:class:`~mmspectral.models.layers.spectral.StandardDFT`).

:class:`DFTOpTransforms` computes ``torch.fft.rfft2(x, dim=dims,
norm='ortho')`` and its inverse ``torch.fft.irfft2(z, s=size, dim=dims,
norm='ortho')`` on real tensors: a spectrum is a pair ``(re, im)`` of real
tensors laid out as ``rfft2`` lays it out (``dims[0]``: all frequencies in
FFT order, ``dims[1]``: ``0 .. W // 2``). Optionally only some frequency
``rows`` and the first ``cols`` columns are computed (AFNO's kept modes);
the inverse then treats the others as zero.

The inverse follows torch's ``irfft2``: the complex inverse over ``dims[0]``,
then the real inverse over ``dims[1]``, which uses only the real part of the
zero (and, for even widths, Nyquist) column. So spectra that are not exactly
Hermitian (a filter product, AFNO's MLP output) give torch's result.
"""
import math
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

Pair = Tuple[Tensor, Tensor]


def _check_dims(x: Tensor, dims: Sequence[int]):
    if len(dims) != 2 or not all(0 <= d < x.dim() for d in dims):
        raise ValueError(f'dims must be two non-negative axes of the '
                         f'{x.dim()}-d input, got {dims}')


class DFTOpTransforms:
    """The DFT as the ONNX ``DFT`` operator (opset 17: the axis is an
    attribute, which OpenVINO's importer reads; it ignores DFT-20's axis
    input). Every transform is complex to complex, the form all runtimes
    implement: the real input gets a zero imaginary part and the inverse
    rebuilds the Hermitian half of the last axis; ONNX's unnormalised
    forward and ``1/N`` inverse are rescaled to ``'ortho'``."""
    name = 'dft'

    def rfft2(self, x: Tensor, dims: Sequence[int],
              rows: Optional[Tuple[int, ...]] = None,
              cols: Optional[int] = None) -> Pair:
        from .onnx_ops import dft
        _check_dims(x, dims)
        hdim, wdim = dims
        height, width = x.shape[hdim], x.shape[wdim]
        y = torch.stack([x, torch.zeros_like(x)], dim=-1)
        y = dft(y, wdim, False).narrow(
            wdim, 0, width // 2 + 1 if cols is None else cols)
        y = dft(y, hdim, False)
        if rows is not None:
            y = y.index_select(hdim, _index(rows))
        y = y * (1 / math.sqrt(height * width))
        return y[..., 0], y[..., 1]

    def irfft2(self, re: Tensor, im: Tensor, dims: Sequence[int],
               size: Tuple[int, int],
               rows: Optional[Tuple[int, ...]] = None,
               cols: Optional[int] = None) -> Tensor:
        from .onnx_ops import dft
        _check_dims(re, dims)
        hdim, wdim = dims
        height, width = size
        z = torch.stack([re, im], dim=-1) * math.sqrt(height * width)
        if rows is not None:  # the other rows are zero
            z = torch.cat([z, torch.zeros_like(z.narrow(hdim, 0, 1))], hdim)
            z = z.index_select(hdim, _index(_scatter_rows(rows, height)))
        count = width // 2 + 1
        if z.shape[wdim] < count:
            pad = list(z.shape)
            pad[wdim] = count - z.shape[wdim]
            z = torch.cat([z, z.new_zeros(pad)], wdim)
        z = dft(z, hdim, True)
        # columns W - k (k = W - count .. 1) are the conjugates of columns k
        mirror = z.index_select(wdim, _index(range(width - count, 0, -1)))
        z = torch.cat([z, mirror * _conjugator(z.dim())], wdim)
        return dft(z, wdim, True)[..., 0]


def _index(values) -> Tensor:
    return torch.tensor(list(values), dtype=torch.long)


def _scatter_rows(rows: Sequence[int], height: int) -> list:
    """For each of ``height`` rows its position in ``rows``, or
    ``len(rows)`` (a zero row appended after them)."""
    where = {r: i for i, r in enumerate(rows)}
    return [where.get(r, len(rows)) for r in range(height)]


def _conjugator(ndim: int) -> Tensor:
    return torch.tensor([1.0, -1.0]).reshape(*([1] * (ndim - 1)), 2)
