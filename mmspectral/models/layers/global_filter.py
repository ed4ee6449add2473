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

The transforms run on the spectral engine (:mod:`.spectral`), as one op
(``torch.ops.mmspectral.global_filter``) that eager mode, autograd and
``torch.compile`` all see whole: inside it the chosen implementation runs
with the map's actual size, and the filter resized and laid out for it is
kept between calls in eval mode (see :class:`~.utils.ResizeCache`). Its
gradients are the adjoint transforms, so every implementation trains.
"""
import functools
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.logging import MMLogger
from torch import Tensor

from .spectral import (TIMINGS, MatrixPlan, SpectralLayer, SpectralTimings,
                       _outer_inner, complex_multiply, compute_dtype,
                       half_spectrum_weights, mix_valid_regions,
                       resolve_impl, to_representation,
                       to_representation_adjoint)
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


def resize_filter_adjoint(grad: Tensor, src_size: Tuple[int, int],
                          dst_size: Tuple[int, int],
                          mode: str = 'frequency') -> Tensor:
    """The transpose of :func:`resize_filter`: the gradient for the stored
    filter of a gradient ``grad`` for the resized one."""
    rows, cols = _cached_resize_matrices(
        tuple(src_size), tuple(dst_size), mode, grad.dtype, grad.device)
    return torch.einsum('ih,ij...,jw->hw...', rows, grad, cols)


def needs_resize(spatial_size: Sequence[int], size: Sequence[int],
                 mode: str) -> bool:
    """Whether a filter stored for ``spatial_size`` is resized for a
    ``size`` map (the official ``'bilinear'`` rule compares frequency grids
    only)."""
    (h0, w0), (height, width) = spatial_size, size
    if mode == 'bilinear':
        return (height, width // 2 + 1) != (h0, w0 // 2 + 1)
    return (height, width) != (h0, w0)


def standard_filter(weight: Tensor, spatial_size: Sequence[int],
                    size: Tuple[int, int], mode: str) -> Tensor:
    """The stored filter, float32, on the half spectrum of a ``size`` map:
    ``(H, W // 2 + 1, C, 2)``."""
    weight = weight.float()
    if needs_resize(spatial_size, size, mode):
        weight = resize_filter(weight, tuple(spatial_size), size, mode)
    return weight


# -- the op ------------------------------------------------------------------


def _dims(channels_last: bool) -> Tuple[int, int]:
    return (1, 2) if channels_last else (2, 3)


def _plan(impl: str, size, x: Tensor, dims, dtype) -> Optional[MatrixPlan]:
    """None for ``'fft'``, else the :class:`MatrixPlan` of ``impl``."""
    if impl == 'fft':
        return None
    _, inner = _outer_inner(x.shape, dims)
    return MatrixPlan(size, impl == 'dft', inner, dtype, x.device)


def _candidates(size, x: Tensor, dims, dtype) -> List[str]:
    """What ``'auto'`` times: ``'fft'``, ``'dft'`` unless its products get
    large, ``'factored'`` if it differs from ``'dft'``."""
    candidates = ['fft']
    if sum(size) <= 1024:
        candidates.append('dft')
    plan = _plan('factored', size, x, dims, dtype)
    if plan.h2 > 1 or plan.w1 > 1:
        candidates.append('factored')
    return candidates


def _layout_filter(weight: Tensor, plan: Optional[MatrixPlan],
                   size: Tuple[int, int], channels_last: bool,
                   dtype: torch.dtype) -> Tensor:
    """A standard-spectrum filter ``(H, K, C, 2)`` laid out to multiply
    ``plan``'s spectrum: complex ``(H, K, C)`` / ``(C, H, K)`` against
    ``rfft2``'s for ``'fft'``; otherwise real, in ``dtype``, the parts
    axis where the plan has it."""
    if plan is None:
        weight = torch.view_as_complex(weight.contiguous())
        return weight if channels_last else weight.permute(2, 0, 1)
    kh, kw, _ = plan.frequencies()
    rep = to_representation(weight, size, kh, kw).view(
        plan.rows, plan.w1, plan.w2, weight.shape[2], 2)
    order = (0, 1, 4, 2, 3) if channels_last else (3, 0, 1, 4, 2)
    return rep.permute(order).to(dtype).contiguous()


def _spectrum_view(y: Tensor, x: Tensor, channels_last: bool):
    """A plan's spectrum shaped against the laid-out filter, and the axis
    of its parts."""
    if channels_last:
        return y, -3
    return y.view(x.shape[0], x.shape[1], *y.shape[1:-1]), -2


def _apply(x: Tensor, weight: Tensor, plan: Optional[MatrixPlan], dims,
           size, conjugate: bool, dtype: torch.dtype) -> Tensor:
    if plan is None:
        with torch.autocast(x.device.type, enabled=False):
            spectrum = torch.fft.rfft2(x.float(), dim=dims, norm='ortho')
            spectrum.mul_(weight.conj() if conjugate else weight)
            return torch.fft.irfft2(spectrum, s=size, dim=dims, norm='ortho')
    outer, inner = _outer_inner(x.shape, dims)
    spectrum = plan.forward(x.to(dtype), outer, inner)
    spectrum, part = _spectrum_view(spectrum, x, dims == (1, 2))
    spectrum = complex_multiply(spectrum, weight, part, conjugate)
    return plan.inverse(spectrum, outer, inner).view(x.shape)


def filter_forward(x: Tensor, weight: Tensor, spatial_size: List[int],
                   resize_mode: str, channels_last: bool, impl: str,
                   dtype: torch.dtype, cache: int, conjugate: bool,
                   out_dtype: torch.dtype) -> Tensor:
    """What ``torch.ops.mmspectral.global_filter`` computes: the global
    filter of ``x`` (conjugated: its adjoint), see :class:`GlobalFilter`.

    ``impl`` is resolved here, with the map's size; the laid-out filter is
    kept in the :class:`ResizeCache` named by ``cache`` (``-1``: none)."""
    x = x.contiguous()
    dims = _dims(channels_last)
    size = (int(x.shape[dims[0]]), int(x.shape[dims[1]]))
    keeper = ResizeCache.find(cache)

    # timing 'auto': with a cache the laid-out filter is made once (in the
    # warm-up run) as in use; without one its cost is part of every call
    timed_layouts = {} if keeper is not None else None

    def run(chosen: str, layouts: Optional[dict] = None) -> Tensor:
        plan = _plan(chosen, size, x, dims, dtype)

        def layout():
            return _layout_filter(
                standard_filter(weight, spatial_size, size, resize_mode),
                plan, size, channels_last, dtype)

        if layouts is not None:
            if chosen not in layouts:
                layouts[chosen] = layout()
            filt = layouts[chosen]
        elif keeper is not None:
            filt = keeper.lookup(weight, (size, chosen, str(dtype)), layout)
        else:
            filt = layout()
        return _apply(x, filt, plan, dims, size, conjugate, dtype)

    chosen = resolve_impl(impl, 'filter', x, dims, dtype,
                          _candidates(size, x, dims, dtype),
                          lambda c: run(c, timed_layouts))
    return run(chosen).to(out_dtype)


def filter_weight_grad(x: Tensor, grad: Tensor, weight: Tensor,
                       spatial_size: List[int], resize_mode: str,
                       channels_last: bool, impl: str,
                       dtype: torch.dtype) -> Tensor:
    """The gradient for the stored ``weight`` of the gradient ``grad`` of
    the filter's output on ``x``: the sum over the batch of ``w *
    conj(X) * G`` (the spectra of ``x`` and ``grad``, ``w`` the weights of
    the inverse), taken back through the filter's layout and resize."""
    x, grad = x.contiguous(), grad.contiguous()
    dims = _dims(channels_last)
    size = (int(x.shape[dims[0]]), int(x.shape[dims[1]]))
    chosen = impl
    if impl == 'auto':  # the forward pass has timed the candidates
        chosen = TIMINGS.best(SpectralTimings.key('filter', x, dims,
                                                  dtype)) or 'fft'
    plan = _plan(chosen, size, x, dims, dtype)
    channels = x.shape[3 if channels_last else 1]
    if plan is None:
        with torch.autocast(x.device.type, enabled=False):
            spectra = [torch.fft.rfft2(t.float(), dim=dims, norm='ortho')
                       for t in (x, grad)]
            weights = half_spectrum_weights(size[1], size[1] // 2 + 1)
            if channels_last:
                weights = weights[:, None]
            product = spectra[0].conj() * spectra[1] * weights.to(
                x.device, torch.float32)
            product = product.sum(0)
            if not channels_last:
                product = product.permute(1, 2, 0)
            rep = torch.view_as_real(product.contiguous()).flatten(0, 1)
            kh, kw = torch.arange(size[0]), torch.arange(size[1] // 2 + 1)
    else:
        outer, inner = _outer_inner(x.shape, dims)
        spectra = [
            _spectrum_view(plan.forward(t.to(dtype), outer, inner), x,
                           channels_last)[0] for t in (x, grad)
        ]
        product = complex_multiply(spectra[1], spectra[0],
                                   -3 if channels_last else -2, True)
        kh, kw, weights = plan.frequencies()
        weights = weights.to(x.device, torch.float32)
        weights = weights.view(-1, *[1] * (4 if channels_last else 3))
        product = (product.float() * weights).sum(0)
        order = (0, 1, 3, 4, 2) if channels_last else (1, 2, 4, 0, 3)
        rep = product.permute(order).reshape(-1, channels, 2)
    shape = (size[0], size[1] // 2 + 1, channels, 2)
    grad_weight = to_representation_adjoint(rep, shape, size, kh, kw)
    if needs_resize(spatial_size, size, resize_mode):
        grad_weight = resize_filter_adjoint(grad_weight, tuple(spatial_size),
                                            size, resize_mode)
    return grad_weight.to(weight.dtype)


@torch.library.custom_op('mmspectral::global_filter', mutates_args=())
def _global_filter_op(x: Tensor, weight: Tensor, spatial_size: List[int],
                      resize_mode: str, channels_last: bool, impl: str,
                      dtype: torch.dtype, cache: int, conjugate: bool,
                      out_dtype: torch.dtype) -> Tensor:
    return filter_forward(x, weight, spatial_size, resize_mode,
                          channels_last, impl, dtype, cache, conjugate,
                          out_dtype)


@_global_filter_op.register_fake
def _(x, weight, spatial_size, resize_mode, channels_last, impl, dtype,
      cache, conjugate, out_dtype):
    return x.new_empty(x.shape, dtype=out_dtype)


@torch.library.custom_op('mmspectral::global_filter_weight_grad',
                         mutates_args=())
def _weight_grad_op(x: Tensor, grad: Tensor, weight: Tensor,
                    spatial_size: List[int], resize_mode: str,
                    channels_last: bool, impl: str,
                    dtype: torch.dtype) -> Tensor:
    return filter_weight_grad(x, grad, weight, spatial_size, resize_mode,
                              channels_last, impl, dtype)


@_weight_grad_op.register_fake
def _(x, grad, weight, spatial_size, resize_mode, channels_last, impl,
      dtype):
    return torch.empty_like(weight)


def _setup_context(ctx, inputs, output):
    x, weight, *args = inputs
    ctx.save_for_backward(x, weight)
    ctx.args = args


def _backward(ctx, grad):
    x, weight = ctx.saved_tensors
    (spatial_size, resize_mode, channels_last, impl, dtype, _, conjugate,
     _) = ctx.args
    grad_x = grad_weight = None
    if ctx.needs_input_grad[0]:
        grad_x = _global_filter_op(grad, weight, spatial_size, resize_mode,
                                   channels_last, impl, dtype, -1,
                                   not conjugate, x.dtype)
    if ctx.needs_input_grad[1]:
        grad_weight = _weight_grad_op(x, grad, weight, spatial_size,
                                      resize_mode, channels_last, impl,
                                      dtype)
    return (grad_x, grad_weight) + (None, ) * 8


_global_filter_op.register_autograd(_backward, setup_context=_setup_context)


class GlobalFilter(SpectralLayer):
    """Learned global filter: ``irfft2(rfft2(x) * W)`` per channel.

    Feature maps of any size ``(H, W) >= 1`` are accepted; the weight is
    resized to their frequency grid (see the module docstring for the two
    modes). The transforms run on the spectral engine in the way ``impl``
    names (:data:`~.spectral.SPECTRAL_IMPLS`; :func:`~.spectral.
    set_spectral_impl` sets it in a whole model): ``'fft'`` is
    ``torch.fft`` in float32 with autocast off, the result cast back to the
    input dtype; the matrix forms compute in the autocast dtype under
    autocast (and return it), else in float32. In eval mode the weight,
    resized and laid out for the implementation, is kept for the last
    ``resize_cache.max_entries`` sizes (see :class:`ResizeCache`; the
    backbones' ``resize_cache_size``). A checkpoint whose filter was stored
    for another native size is resized to this one when loaded.

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
        impl (str): How the transforms are computed, one of
            ``'auto'``, ``'fft'``, ``'dft'``, ``'factored'``. Defaults to
            ``'auto'``.
    """

    def __init__(self,
                 embed_dims: int,
                 spatial_size=14,
                 resize_mode: str = 'frequency',
                 channels_last: bool = True,
                 init_std: float = 0.02,
                 impl: str = 'auto'):
        super().__init__()
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f'resize_mode must be one of {RESIZE_MODES}, '
                             f'got {resize_mode!r}')
        self.embed_dims = embed_dims
        self.spatial_size = to_2tuple(spatial_size)
        self.resize_mode = resize_mode
        self.channels_last = channels_last
        self.impl = impl
        h0, w0 = self.spatial_size
        self.complex_weight = torch.nn.Parameter(
            torch.randn(h0, w0 // 2 + 1, embed_dims, 2) * init_std)
        self.resize_cache = ResizeCache()

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, '
                f'spatial_size={self.spatial_size}, '
                f'resize_mode={self.resize_mode!r}, '
                f'channels_last={self.channels_last}, impl={self.impl!r}')

    def train(self, mode: bool = True):
        self.resize_cache.clear()
        return super().train(mode)

    def standard_filter(self, size: Tuple[int, int]) -> Tensor:
        """The weight (float32) on the half spectrum of a ``size`` map:
        ``(H, W // 2 + 1, C, 2)``."""
        return standard_filter(self.complex_weight, self.spatial_size,
                               tuple(size), self.resize_mode)

    def complex_filter(self, size: Tuple[int, int]) -> Tensor:
        """The complex weight on the half spectrum of a ``size`` map, shaped
        to multiply ``rfft2``'s spectrum: ``(h, w, C)`` for channels-last
        input, ``(C, h, w)`` otherwise."""
        return _layout_filter(self.standard_filter(size), None, tuple(size),
                              self.channels_last, torch.float32)

    def forward(self, x: Tensor,
                valid_sizes: Optional[Sequence[Tuple[int, int]]] = None
                ) -> Tensor:
        """Filter ``x``; with ``valid_sizes`` (one ``(h, w)`` per image) each
        image is filtered over its own top-left region only (zero beyond),
        whatever the padding of the batch."""
        if x.dim() != 4 or x.shape[3 if self.channels_last else 1] != \
                self.embed_dims:
            layout = 'B, H, W, C' if self.channels_last else 'B, C, H, W'
            raise ValueError(
                f'GlobalFilter expects a ({layout}) tensor with C='
                f'{self.embed_dims}, got shape {tuple(x.shape)}')
        if valid_sizes is not None:
            return mix_valid_regions(x, valid_sizes,
                                     _dims(self.channels_last), self._mix)
        return self._mix(x)

    def _mix(self, x: Tensor) -> Tensor:
        if not isinstance(self.impl, str):  # a lowering, see mmspectral.deploy
            return self.impl.global_filter(self, x)
        impl = self.call_impl(x)
        dtype = torch.float32 if impl == 'fft' else compute_dtype(x)
        cache = self.resize_cache.token if self.resize_cache.usable(
            self, self.complex_weight) else -1
        args = (x, self.complex_weight, list(self.spatial_size),
                self.resize_mode, self.channels_last, impl, dtype, cache,
                False, x.dtype if impl == 'fft' else dtype)
        if torch.jit.is_tracing():  # plain operators for tracers (FLOPs)
            return filter_forward(*args)
        return _global_filter_op(*args)

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
