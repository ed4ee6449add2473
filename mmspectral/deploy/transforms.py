"""The 2-D real FFT pair of the spectral layers, in two lowerings.

Both classes compute ``torch.fft.rfft2(x, dim=dims, norm='ortho')`` and its
inverse ``torch.fft.irfft2(z, s=size, dim=dims, norm='ortho')`` on real
tensors: a spectrum is a pair ``(re, im)`` of real tensors laid out as
``rfft2`` lays it out (``dims[0]``: all frequencies in FFT order,
``dims[1]``: ``0 .. W // 2``). Optionally only some frequency ``rows`` and
the first ``cols`` columns are computed (AFNO's kept modes); the inverse then
treats the others as zero.

The inverse follows torch's ``irfft2``: the complex inverse over ``dims[0]``,
then the real inverse over ``dims[1]``, which uses only the real part of the
zero (and, for even widths, Nyquist) column. So spectra that are not exactly
Hermitian (a filter product, AFNO's MLP output) give torch's result.
"""
import functools
import math
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

Pair = Tuple[Tensor, Tensor]


def _angles(out_index: Tensor, in_index: Tensor, n: int) -> Tensor:
    """``2 pi (k n mod N) / N`` in float64; the exact integer remainder keeps
    large products accurate."""
    product = torch.outer(out_index, in_index).remainder(n)
    return product.double() * (2 * math.pi / n)


def half_spectrum_weights(n: int, count: int) -> Tensor:
    """How often each of the first ``count`` half-spectrum columns of a
    length-``n`` real signal occurs in its full spectrum: 1 for the zero and
    the Nyquist column, 2 for the others."""
    k = torch.arange(count)
    return torch.where((k == 0) | (2 * k == n), 1.0, 2.0).double()


@functools.lru_cache(maxsize=64)
def dft_matrices(n: int, rows: Optional[Tuple[int, ...]] = None,
                 cols: Optional[int] = None) -> Tuple[Pair, Pair, Pair,
                                                      Pair]:
    """The float32 matrices of :class:`MatmulTransforms` for length ``n``.

    Args:
        n (int): Signal length.
        rows (tuple[int], optional): Frequencies of the full (complex) DFT
            to compute. Defaults to all, in FFT order.
        cols (int, optional): Half-spectrum columns of the real DFT to
            compute. Defaults to ``n // 2 + 1``.

    Returns:
        tuple: ``(full, full_inv, half, half_inv)``, each a pair
        ``(real, imag)``: the complex DFT ``(R, n)``, its inverse ``(n, R)``,
        the real-to-half DFT ``(K, n)`` and the half-to-real inverse
        ``(n, K)`` (its two parts multiply the real and imaginary parts and
        are summed). Orthonormal scaling throughout.
    """
    index = torch.arange(n)
    freqs = index if rows is None else torch.tensor(rows, dtype=torch.long)
    scale = 1 / math.sqrt(n)
    angle = _angles(freqs, index, n)
    full = (torch.cos(angle) * scale, -torch.sin(angle) * scale)
    full_inv = (full[0].t(), -full[1].t())
    count = n // 2 + 1 if cols is None else cols
    angle = _angles(torch.arange(count), index, n)
    half = (torch.cos(angle) * scale, -torch.sin(angle) * scale)
    weight = half_spectrum_weights(n, count)[:, None]
    half_inv = ((half[0] * weight).t(), (half[1] * weight).t())
    return tuple(
        tuple(m.float().contiguous() for m in pair)
        for pair in (full, full_inv, half, half_inv))


def contract(x: Tensor, matrix: Tensor, axis: int) -> Tensor:
    """``matrix @ x`` along ``axis``: ``(K, A)`` times an axis of size ``A``
    gives the same tensor with that axis of size ``K``. Only reshapes and
    one MatMul, never a transpose of ``x``."""
    shape = x.shape
    size, out = shape[axis], matrix.shape[0]
    if axis == x.dim() - 1:
        return torch.matmul(x, matrix.t())
    after = math.prod(shape[axis + 1:])
    y = torch.matmul(matrix, x.reshape(-1, size, after))
    return y.reshape(*shape[:axis], out, *shape[axis + 1:])


def complex_contract(re: Tensor, im: Optional[Tensor], matrix: Pair,
                     axis: int) -> Pair:
    """A complex matrix ``(mr, mi)`` times the complex ``re + i im`` (or
    the real ``re`` when ``im`` is None) along ``axis``."""
    mr, mi = matrix
    if im is None:
        return contract(re, mr, axis), contract(re, mi, axis)
    return (contract(re, mr, axis) - contract(im, mi, axis),
            contract(re, mi, axis) + contract(im, mr, axis))


def _check_dims(x: Tensor, dims: Sequence[int]):
    if len(dims) != 2 or not all(0 <= d < x.dim() for d in dims):
        raise ValueError(f'dims must be two non-negative axes of the '
                         f'{x.dim()}-d input, got {dims}')


class MatmulTransforms:
    """The DFT as real matrix products (ONNX ``MatMul``): exact, and runs
    on every runtime.

    A map of ``H x W`` costs about ``H W (W + 2 H)`` multiply-adds per
    channel each way, against ``H W log(H W)`` for an FFT: cheap for the
    feature maps of the late stages, dearer for the largest maps.
    """
    name = 'matmul'

    def rfft2(self, x: Tensor, dims: Sequence[int],
              rows: Optional[Tuple[int, ...]] = None,
              cols: Optional[int] = None) -> Pair:
        _check_dims(x, dims)
        hdim, wdim = dims
        half = dft_matrices(x.shape[wdim], None, cols)[2]
        re, im = complex_contract(x, None, half, wdim)
        full = dft_matrices(x.shape[hdim], rows)[0]
        return complex_contract(re, im, full, hdim)

    def irfft2(self, re: Tensor, im: Tensor, dims: Sequence[int],
               size: Tuple[int, int],
               rows: Optional[Tuple[int, ...]] = None,
               cols: Optional[int] = None) -> Tensor:
        _check_dims(re, dims)
        hdim, wdim = dims
        full_inv = dft_matrices(size[0], rows)[1]
        re, im = complex_contract(re, im, full_inv, hdim)
        half_inv = dft_matrices(size[1], None, cols)[3]
        return contract(re, half_inv[0], wdim) + contract(
            im, half_inv[1], wdim)


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
