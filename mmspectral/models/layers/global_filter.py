"""The spectral core shared by every family: a learned global filter.

A global filter multiplies the 2-D real FFT of a feature map by a learned
complex weight per channel and frequency, i.e. a depthwise circular
convolution with a kernel as large as the map. GFNet, SpectFormer and HorNet's
GlobalLocalFilter all use this layer; only the data layout and the resize mode
differ between them.

The learned weight is defined on the frequency grid of one native feature size
``(H0, W0)``: ``(H0, W0 // 2 + 1)`` frequencies, rows in FFT order
``0, 1, ..., -1`` and columns the real-input half spectrum ``0 .. Nyquist``.
Feature maps of any other size get a resized weight:

* ``'bilinear'`` interpolates the stored array over its index grid with
  ``align_corners=True``, real and imaginary parts separately. This is what the
  official HorNet dense-prediction code does, so it reproduces HorNet's
  published detection / segmentation numbers.
* ``'frequency'`` treats the stored weight as samples of a continuous spectrum
  and interpolates linearly in frequency: rows at ``fftfreq(H0)`` with periodic
  wrap (frequency -1/2 neighbours +1/2), columns at ``rfftfreq(W0)``, the ends
  held constant beyond the last stored column. A smooth filter learned at one
  size then stays the same filter at another size.
"""
import functools
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmengine.logging import MMLogger
from torch import Tensor

from mmspectral.deploy.lowering import active_lowering
from .utils import ResizeCache, guess_native_size, to_2tuple

RESIZE_MODES = ('frequency', 'bilinear')


def _linear_interp_matrix(src: Tensor, dst: Tensor,
                          period: Optional[float] = None) -> Tensor:
    """Matrix ``M`` with ``M @ f(src) = linear interpolation of f at dst``.

    Args:
        src (Tensor): Sample positions of the stored values, any order.
        dst (Tensor): Positions to interpolate at.
        period (float, optional): If given, positions are on a circle of this
            length and interpolation wraps around; otherwise values beyond
            the first/last sample are held constant. Defaults to None.

    Returns:
        Tensor: ``(len(dst), len(src))`` float64 weights, rows summing to 1.
    """
    order = torch.argsort(src)
    pos = src[order]
    idx = order
    if period is not None:
        # close the circle: the first sample reappears one period later
        pos = torch.cat([pos, pos[:1] + period])
        idx = torch.cat([idx, idx[:1]])
        dst = pos[0] + torch.remainder(dst - pos[0], period)
    matrix = torch.zeros(len(dst), len(src), dtype=torch.float64)
    if len(src) == 1:
        matrix[:, 0] = 1.0
        return matrix
    dst = dst.clamp(pos[0], pos[-1])
    right = torch.searchsorted(pos, dst, right=True).clamp(1, len(pos) - 1)
    left = right - 1
    t = (dst - pos[left]) / (pos[right] - pos[left])
    rows = torch.arange(len(dst))
    matrix.index_put_((rows, idx[left]), 1 - t, accumulate=True)
    matrix.index_put_((rows, idx[right]), t, accumulate=True)
    return matrix


def _align_corners_grid(n: int, n_out: int) -> Tuple[Tensor, Tensor]:
    """Index positions of ``F.interpolate(align_corners=True)``."""
    src = torch.arange(n, dtype=torch.float64)
    scale = (n - 1) / (n_out - 1) if n_out > 1 else 0.0
    return src, torch.arange(n_out, dtype=torch.float64) * scale


def filter_resize_matrices(src_size: Tuple[int, int],
                           dst_size: Tuple[int, int],
                           mode: str = 'frequency') -> Tuple[Tensor, Tensor]:
    """Row and column interpolation matrices that resize a global filter.

    Args:
        src_size (tuple[int, int]): Native spatial size ``(H0, W0)`` whose
            half spectrum ``(H0, W0 // 2 + 1)`` the filter is stored on.
        dst_size (tuple[int, int]): Spatial size ``(H, W)`` of the feature map.
        mode (str): ``'frequency'`` or ``'bilinear'``, see the module doc.
            Defaults to ``'frequency'``.

    Returns:
        tuple[Tensor, Tensor]: ``R`` of shape ``(H, H0)`` and ``C`` of shape
        ``(W // 2 + 1, W0 // 2 + 1)``; the resized filter is ``R @ F @ C.T``.
    """
    (h0, w0), (h, w) = src_size, dst_size
    if mode == 'frequency':
        rows = _linear_interp_matrix(
            torch.fft.fftfreq(h0, dtype=torch.float64),
            torch.fft.fftfreq(h, dtype=torch.float64),
            period=1.0)
        cols = _linear_interp_matrix(
            torch.fft.rfftfreq(w0, dtype=torch.float64),
            torch.fft.rfftfreq(w, dtype=torch.float64))
    elif mode == 'bilinear':
        rows = _linear_interp_matrix(*_align_corners_grid(h0, h))
        cols = _linear_interp_matrix(
            *_align_corners_grid(w0 // 2 + 1, w // 2 + 1))
    else:
        raise ValueError(f'resize_mode must be one of {RESIZE_MODES}, '
                         f'got {mode!r}')
    return rows, cols


@functools.lru_cache(maxsize=256)
def _cached_resize_matrices(src_size, dst_size, mode, dtype, device):
    # a few KB each; a test set brings a few hundred sizes at most
    return tuple(m.to(dtype=dtype, device=device)
                 for m in filter_resize_matrices(src_size, dst_size, mode))


def resize_filter(weight: Tensor,
                  src_size: Tuple[int, int],
                  dst_size: Tuple[int, int],
                  mode: str = 'frequency') -> Tensor:
    """Resize a real-stored complex filter of shape ``(h, w, ..., 2)``.

    Args:
        weight (Tensor): Filter on the half spectrum of ``src_size``, the first
            two dims being the frequency rows and columns.
        src_size (tuple[int, int]): Native spatial size ``(H0, W0)``.
        dst_size (tuple[int, int]): Target spatial size ``(H, W)``.
        mode (str): ``'frequency'`` or ``'bilinear'``. Defaults to
            ``'frequency'``.

    Returns:
        Tensor: The filter on the half spectrum of ``dst_size``, same layout.
    """
    rows, cols = _cached_resize_matrices(
        tuple(src_size), tuple(dst_size), mode, weight.dtype, weight.device)
    return torch.einsum('ih,hw...,jw->ij...', rows, weight, cols)


def _frequency_rows(weight: Tensor, rows: int) -> Tensor:
    """``weight`` (rows in FFT order ``0, 1, ..., -1``) linearly
    interpolated in frequency, with periodic wrap, onto the FFT-order rows
    of ``rows`` points."""
    h0 = weight.shape[0]
    k = torch.arange(rows, device=weight.device, dtype=torch.float64)
    freq = torch.where(k < (rows + 1) // 2, k, k - rows) / rows
    # stored row r sits at frequency r / h0 on the circle of period 1
    pos = torch.remainder(freq * h0, h0)
    left = pos.floor().long().clamp(max=h0 - 1)
    t = (pos - left).to(weight).view(-1, *([1] * (weight.dim() - 1)))
    return weight[left] * (1 - t) + weight[(left + 1) % h0] * t


def _frequency_cols(weight: Tensor, width: int, w0: int) -> Tensor:
    """``weight`` (the half-spectrum columns ``0 .. w0 // 2`` of a ``w0``
    wide map, dim 1) interpolated in frequency onto those of a ``width``
    wide map, the last stored column held beyond its frequency."""
    cols, last = width // 2 + 1, weight.shape[1] - 1
    if last == 0:
        return weight.expand(weight.shape[0], cols, *weight.shape[2:])
    j = torch.arange(cols, device=weight.device, dtype=torch.float64)
    pos = (j * w0 / width).clamp(max=last)  # column c is at frequency c/w0
    left = pos.floor().long().clamp(max=last - 1)
    t = (pos - left).to(weight).view(1, -1, *([1] * (weight.dim() - 2)))
    return weight[:, left] * (1 - t) + weight[:, left + 1] * t


def resize_filter_in_graph(weight: Tensor, src_size: Tuple[int, int],
                           dst_size: Tuple[int, int],
                           mode: str = 'frequency') -> Tensor:
    """:func:`resize_filter` written with gathers and ``F.interpolate`` on
    tensors of the target size, so that ``torch.compile`` traces it with a
    symbolic input size (one graph for all sizes, no Python branch on the
    size). Equal to :func:`resize_filter` up to float32 rounding."""
    (height, width), w0 = dst_size, src_size[1]
    if mode == 'bilinear':
        planes = weight.permute(3, 2, 0, 1)  # (2, C, h, w)
        planes = torch.nn.functional.interpolate(
            planes, size=(height, width // 2 + 1), mode='bilinear',
            align_corners=True)
        return planes.permute(2, 3, 1, 0)
    return _frequency_cols(_frequency_rows(weight, height), width, w0)


class GlobalFilter(nn.Module):
    """Learned global filter: ``irfft2(rfft2(x) * W)`` per channel.

    The FFT runs in float32 with autocast disabled whatever the input dtype
    (cuFFT in half precision only handles powers of two and the CPU FFT has no
    half at all); the result is cast back to the input dtype. Feature maps of
    any size ``(H, W) >= 1`` are accepted; the weight is resized to their
    frequency grid (see the module docstring for the two modes). In eval mode
    the complex weight, resized and laid out for the spectrum, is kept for
    the last ``resize_cache.max_entries`` sizes (see :class:`ResizeCache`;
    the backbones' ``resize_cache_size``). A
    checkpoint whose filter was stored for another native size is resized to
    this one when loaded.

    Args:
        embed_dims (int): Number of channels.
        spatial_size (int | tuple[int, int]): Native feature size ``(H0, W0)``
            the weight is stored for; its shape is ``(H0, W0 // 2 + 1, C, 2)``
            (real and imaginary parts last, which DDP/NCCL can reduce).
            Defaults to 14.
        resize_mode (str): ``'frequency'`` or ``'bilinear'``. Defaults to
            ``'frequency'``.
        channels_last (bool): If True the input is ``(B, H, W, C)`` (GFNet,
            SpectFormer), else ``(B, C, H, W)`` (HorNet). Defaults to True.
        init_std (float): Std of the normal initialisation. Defaults to 0.02,
            as in the official GFNet code.
    """

    def __init__(self,
                 embed_dims: int,
                 spatial_size=14,
                 resize_mode: str = 'frequency',
                 channels_last: bool = True,
                 init_std: float = 0.02):
        super().__init__()
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f'resize_mode must be one of {RESIZE_MODES}, '
                             f'got {resize_mode!r}')
        self.embed_dims = embed_dims
        self.spatial_size = to_2tuple(spatial_size)
        self.resize_mode = resize_mode
        self.channels_last = channels_last
        h0, w0 = self.spatial_size
        self.complex_weight = nn.Parameter(
            torch.randn(h0, w0 // 2 + 1, embed_dims, 2) * init_std)
        self.resize_cache = ResizeCache()

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, '
                f'spatial_size={self.spatial_size}, '
                f'resize_mode={self.resize_mode!r}, '
                f'channels_last={self.channels_last}')

    def train(self, mode: bool = True):
        self.resize_cache.clear()
        return super().train(mode)

    def _needs_resize(self, size: Tuple[int, int]) -> bool:
        if self.resize_mode == 'bilinear':
            # the official rule compares frequency grids only
            h0, w0 = self.spatial_size
            return (size[0], size[1] // 2 + 1) != (h0, w0 // 2 + 1)
        return tuple(size) != self.spatial_size

    def complex_filter(self, size: Tuple[int, int]) -> Tensor:
        """The complex weight on the half spectrum of a ``size`` map, shaped
        to broadcast against the spectrum: ``(h, w, C)`` for channels-last
        input, ``(C, h, w)`` otherwise; in memory always ``(C, h, w)``, the
        layout ``rfft2`` gives the spectrum in both cases."""

        if torch.compiler.is_compiling():
            # in the graph, for any size (the cache and its Python-side
            # matrices would specialise the graph to each size)
            return self._to_layout(
                resize_filter_in_graph(self.complex_weight.float(),
                                       self.spatial_size, size,
                                       self.resize_mode))

        def compute() -> Tensor:
            weight = self.complex_weight.float()
            if self._needs_resize(size):
                weight = resize_filter(weight, self.spatial_size, size,
                                       self.resize_mode)
            return self._to_layout(weight)

        return self.resize_cache.get(self, self.complex_weight, tuple(size),
                                     compute)

    def _to_layout(self, weight: Tensor) -> Tensor:
        weight = torch.view_as_complex(weight.contiguous())
        weight = weight.permute(2, 0, 1).contiguous()
        return weight.permute(1, 2, 0) if self.channels_last else weight

    def forward(self, x: Tensor) -> Tensor:
        dims = (1, 2) if self.channels_last else (2, 3)
        if x.dim() != 4 or x.shape[3 if self.channels_last else 1] != \
                self.embed_dims:
            layout = 'B, H, W, C' if self.channels_last else 'B, C, H, W'
            raise ValueError(
                f'GlobalFilter expects a ({layout}) tensor with C='
                f'{self.embed_dims}, got shape {tuple(x.shape)}')
        lowering = active_lowering()
        if lowering is not None:  # exporting: see mmspectral.deploy
            return lowering.global_filter(self, x)
        size = (x.shape[dims[0]], x.shape[dims[1]])
        with torch.autocast(device_type=x.device.type, enabled=False):
            spectrum = torch.fft.rfft2(x.float(), dim=dims, norm='ortho')
            weight = self.complex_filter(size)
            if torch.is_grad_enabled() and (spectrum.requires_grad
                                            or weight.requires_grad):
                spectrum = spectrum * weight
            else:  # nothing to differentiate: no new spectrum-sized buffer
                spectrum.mul_(weight)
            out = torch.fft.irfft2(spectrum, s=size, dim=dims, norm='ortho')
        return out.to(x.dtype)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + 'complex_weight'
        weight = state_dict.get(key)
        if weight is not None and weight.dim() == 4 and \
                weight.shape[:2] != self.complex_weight.shape[:2] and \
                weight.shape[2:] == self.complex_weight.shape[2:]:
            src = guess_native_size(*weight.shape[:2])
            state_dict[key] = resize_filter(weight.float(), src,
                                            self.spatial_size,
                                            self.resize_mode).to(weight.dtype)
            MMLogger.get_current_instance().info(
                f'{key}: resized the stored filter {tuple(weight.shape)} '
                f'(native size {src}) to {tuple(state_dict[key].shape)} '
                f'({self.resize_mode} mode)')
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
