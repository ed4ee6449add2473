"""The spectral transform engine: the 2-D real DFT pair of the spectral
layers, computed in several ways behind one interface.

Every way computes ``torch.fft.rfft2(x, norm='ortho')`` and its inverse
``torch.fft.irfft2(z, s=(H, W), norm='ortho')`` over two adjacent axes
``(H, W)`` of a real tensor, ``(B, H, W, C)`` or ``(B, C, H, W)``:

* ``'fft'``: ``torch.fft`` in float32 with autocast off (the reference);
* ``'dft'``: the real DFT matrices (cosines and sines of the map size) as one
  matrix product per axis, in the compute dtype (bf16/fp16 under autocast,
  float32 otherwise; the products accumulate in float32);
* ``'factored'``: each axis of composite length ``N = N1 x N2`` as two small
  DFT matrix products with the twiddle factors folded into the second
  (Cooley-Tukey; a prime length stays one product), so the cost grows like
  ``N (N1 + N2)`` instead of ``N**2`` and still runs as matrix products;
* ``'auto'``: the fastest of those three for the device, dtype, map size
  and channels, by the timing rule of :class:`SpectralTimings`.

The matrix forms never use complex tensors: a spectrum is real with a part
axis of size 2 (real, imaginary). They do not lay it out as ``rfft2`` does.
The first (outer) axis ``H`` is the real-input one here: its half spectrum
``0 .. H // 2`` is kept and ``W`` transformed in full, with the factored
frequencies in digit-reversed order; :class:`MatrixPlan` says which
frequency each element holds. Because the inputs are real, any such set
that holds each frequency or its mirror is a complete spectrum: the
inverse takes the real part of the weighted one-sided sum, with weights 1
or 2 for frequencies that are their own mirror or not. A filter is brought
into that set once per size by :func:`to_representation`, which also
applies ``irfft2``'s treatment of the zero and Nyquist columns (their
Hermitian part), so every way gives ``torch.fft``'s result. Where the
standard half spectrum is needed (the AFNO mixer, the deployment
lowerings), :class:`StandardDFT` gives it, optionally for some frequency
rows and the first columns only (AFNO's kept modes).
"""
import functools
import json
import math
import statistics
import time
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

SPECTRAL_IMPLS = ('auto', 'fft', 'dft', 'factored')
COMPUTED_IMPLS = ('fft', 'dft', 'factored')

#: Axes up to this length are never factored: one small product is cheaper
#: than two.
DENSE_MAX = 16


# -- choosing an implementation ----------------------------------------------


def check_impl(impl):
    """``impl`` if it is one of :data:`SPECTRAL_IMPLS` or a lowering (an
    object with ``global_filter(layer, x)`` and ``afno(layer, x)``
    methods, which computes the layers itself, see
    :mod:`mmspectral.deploy.lowering`).

    Raises:
        ValueError: Anything else, naming the valid choices.
    """
    if isinstance(impl, str):
        if impl in SPECTRAL_IMPLS:
            return impl
    elif all(callable(getattr(impl, name, None))
             for name in ('global_filter', 'afno')):
        return impl
    raise ValueError(f'spectral impl must be one of {SPECTRAL_IMPLS} (or a '
                     'lowering object with global_filter(layer, x) and '
                     f'afno(layer, x) methods), got {impl!r}')


class SpectralLayer(nn.Module):
    """Base of the layers that run on this engine: they hold an ``impl``
    (see :func:`check_impl`) that :func:`set_spectral_impl` sets."""

    @property
    def impl(self):
        return self._impl

    @impl.setter
    def impl(self, value):
        self._impl = check_impl(value)

    def call_impl(self, x: Tensor) -> str:
        """The implementation one call runs: ``'fft'`` for tracers (FLOP
        counting), and for ``'auto'`` where autograd records the call:
        ``'auto'`` chooses by timing forward passes, and the backward of the
        matrix forms can cost more than they save (measured on a CPU
        without AMX, docs/measuring.md); training on them is chosen
        explicitly with ``spectral_impl``."""
        if torch.jit.is_tracing():
            return 'fft'
        if self.impl == 'auto' and torch.is_grad_enabled() and (
                x.requires_grad or any(
                    p.requires_grad for p in self.parameters(recurse=False))):
            return 'fft'
        return self.impl


def set_spectral_impl(module: nn.Module, impl) -> nn.Module:
    """Set ``impl`` on every spectral layer inside ``module`` (itself
    included).

    Args:
        module (nn.Module): A layer, a backbone or a whole model.
        impl (str | object): One of :data:`SPECTRAL_IMPLS`, or a lowering
            object (see :func:`check_impl`).

    Returns:
        nn.Module: ``module``.

    Raises:
        ValueError: ``impl`` is not a valid choice.
    """
    impl = check_impl(impl)
    for layer in module.modules():
        if isinstance(layer, SpectralLayer):
            layer.impl = impl
    return module


def compute_dtype(x: Tensor) -> torch.dtype:
    """The dtype the matrix forms compute in: a half input's own, else the
    autocast dtype where autocast is on, else float32 (float64 stays)."""
    if x.dtype in (torch.float16, torch.bfloat16, torch.float64):
        return x.dtype
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return torch.float32


class SpectralTimings:
    """The rule behind ``impl='auto'``: a small cache of measured times.

    The first time a spectral op meets a key (kind of op, device, compute
    dtype, layout, batch, map size, channels) it times each candidate
    implementation on its actual input (one warm-up, then three runs
    taking turns, median) and keeps the times; every later call looks the
    choice up. A matrix form is chosen only if it is at least ``margin``
    faster than ``'fft'``, so noise never makes ``'auto'`` slower than
    today's path. Maps with fewer than ``min_elements`` elements take
    ``'fft'`` without timing: their transforms take microseconds either
    way. :meth:`save` and :meth:`load` keep the table in a JSON file (the
    benchmark tools print it).

    Args:
        margin (float): Relative advantage a matrix form needs. Defaults to
            0.05.
        min_elements (int): Smallest map (batch x H x W x C) that is timed.
            Defaults to 2**16.
    """

    def __init__(self, margin: float = 0.05, min_elements: int = 1 << 16):
        self.margin = margin
        self.min_elements = min_elements
        self.times: Dict[str, Dict[str, float]] = {}

    @staticmethod
    def key(kind: str, x: Tensor, dims: Sequence[int],
            dtype: torch.dtype) -> str:
        """The key of an op of ``kind`` on ``x`` transformed over
        ``dims``."""
        layout = 'last' if dims[1] == x.dim() - 2 else 'first'
        shape = 'x'.join(str(int(s)) for s in x.shape)
        return (f'{kind}|{x.device.type}|{str(dtype).split(".")[-1]}|'
                f'{layout}|{shape}')

    def record(self, key: str, impl: str, seconds: float):
        self.times.setdefault(key, {})[impl] = seconds

    def best(self, key: str) -> Optional[str]:
        """The choice for ``key`` by its recorded times (None if there are
        none): the fastest, unless ``'fft'`` is within ``margin``."""
        times = self.times.get(key)
        if not times:
            return None
        fastest = min(times, key=times.get)
        if 'fft' in times and fastest != 'fft' and \
                times[fastest] > (1 - self.margin) * times['fft']:
            return 'fft'
        return fastest

    def choose(self, key: str, candidates: Sequence[str],
               run: Callable[[str], object], device: torch.device) -> str:
        """The implementation for ``key``, timing ``run(impl)`` for each
        candidate not yet timed."""
        missing = [c for c in candidates if c not in self.times.get(key, {})]
        if missing:
            for impl, seconds in zip(missing,
                                     _median_times(missing, run, device)):
                self.record(key, impl, seconds)
        return self.best(key)

    def save(self, path: str):
        with open(path, 'w') as f:
            json.dump(self.times, f, indent=1, sort_keys=True)

    def load(self, path: str):
        with open(path) as f:
            for key, times in json.load(f).items():
                for impl, seconds in times.items():
                    self.record(key, impl, float(seconds))


def _median_times(impls, run, device, repeat: int = 3) -> List[float]:
    sync = torch.cuda.synchronize if device.type == 'cuda' else (
        lambda: None)
    for impl in impls:  # warm-up: caches, allocator
        run(impl)
    times = {impl: [] for impl in impls}
    for _ in range(repeat):
        for impl in impls:
            sync()
            start = time.perf_counter()
            run(impl)
            sync()
            times[impl].append(time.perf_counter() - start)
    return [statistics.median(times[impl]) for impl in impls]


#: The process-wide timing table of ``impl='auto'``.
TIMINGS = SpectralTimings()


def resolve_impl(impl: str, kind: str, x: Tensor, dims: Sequence[int],
                 dtype: torch.dtype, candidates: Sequence[str],
                 run: Callable[[str], object]) -> str:
    """The implementation to run: ``impl`` itself unless it is
    ``'auto'``, else :data:`TIMINGS`' choice among ``candidates``."""
    if impl != 'auto':
        return impl
    if x.numel() < TIMINGS.min_elements:
        return 'fft'
    if x.device.type == 'cpu' and dtype == torch.float32:
        # measured (benchmark_layers.py's engine table): on a CPU the
        # float32 matrix forms never beat torch.fft by more than noise
        return 'fft'
    return TIMINGS.choose(
        SpectralTimings.key(kind, x, dims, dtype), candidates, run, x.device)


# -- DFT matrices ------------------------------------------------------------


def axis_split(n: int) -> Tuple[int, int]:
    """``(n1, n2)`` with ``n1 * n2 == n`` and ``n1 >= n2`` as close to
    ``sqrt(n)`` as the divisors of ``n`` allow; ``(n, 1)`` (one dense
    product) for primes and lengths up to :data:`DENSE_MAX`."""
    if n <= DENSE_MAX:
        return n, 1
    for n2 in range(math.isqrt(n), 1, -1):
        if n % n2 == 0:
            return n // n2, n2
    return n, 1


def half_spectrum_weights(n: int, count: int) -> Tensor:
    """How often each of the first ``count`` half-spectrum frequencies of a
    length-``n`` real signal occurs in its full spectrum: 1 for the zero
    and the Nyquist frequency, 2 for the others."""
    k = torch.arange(count)
    return torch.where((k == 0) | (2 * k == n), 1.0, 2.0).double()


def dft_rows(freqs: Tensor, inputs: Tensor, n: int,
             scale: float) -> Tuple[Tensor, Tensor]:
    """Real and imaginary parts of ``scale * exp(-2 pi i f j / n)`` for the
    frequencies ``f`` (rows) and input positions ``j`` (columns), in
    float64; the exact integer remainder keeps large products accurate."""
    angle = torch.outer(freqs, inputs).remainder(n).double() * (2 * math.pi
                                                                / n)
    return torch.cos(angle) * scale, -torch.sin(angle) * scale


def _order(matrix: Tensor, interleaved: bool, part_dim: int) -> Tensor:
    """Move the part axis (size 2) of ``matrix`` next to, after
    (``interleaved``: index ``k * 2 + q``) or before (``q * K + k``) the
    frequency axis that follows it."""
    return matrix.transpose(part_dim, part_dim + 1) if interleaved \
        else matrix


def real_to_complex(cr: Tensor, ci: Tensor, interleaved: bool) -> Tensor:
    """``(2K, n)``: a complex ``(K, n)`` matrix acting on real vectors,
    the output's parts in the given order."""
    matrix = torch.stack([cr, ci])  # (q, K, n)
    return _order(matrix, interleaved, 0).reshape(-1, cr.shape[1])


def complex_to_complex(cr: Tensor, ci: Tensor, out_interleaved: bool,
                       in_interleaved: bool) -> Tensor:
    """``(2K, 2n)``: a complex ``(K, n)`` matrix acting on complex vectors
    stored as real ones, the parts of output and input in the given
    orders."""
    matrix = torch.stack([torch.stack([cr, -ci], 1),
                          torch.stack([ci, cr], 1)])  # (q, K, p, n)
    matrix = _order(matrix, out_interleaved, 0)
    matrix = _order(matrix, in_interleaved, 2)
    return matrix.reshape(2 * cr.shape[0], 2 * cr.shape[1])


def complex_to_real(cr: Tensor, ci: Tensor, weights: Tensor,
                    interleaved: bool) -> Tensor:
    """``(n, 2K)``: the real part of the weighted inverse of a complex
    ``(K, n)`` forward matrix, ``Re(sum_k w_k z_k conj(c_kj))``, the
    input's parts in the given order."""
    matrix = torch.stack([cr, ci]) * weights[None, :, None]  # (q, K, n)
    return _order(matrix, interleaved, 0).reshape(-1, cr.shape[1]).t()


@functools.lru_cache(maxsize=64)
def _axis_matrices(n: int, n1: int, real: bool) -> Dict[str, Tensor]:
    """The float64 stage matrices of one axis (see :class:`MatrixPlan`)."""
    n2 = n // n1
    count = n1 // 2 + 1 if real else n1
    first = dft_rows(torch.arange(count), torch.arange(n1), n1,
                     1 / math.sqrt(n1))
    mats = {}
    if real:
        weights = half_spectrum_weights(n1, count)
        mats['first'] = real_to_complex(*first, interleaved=True)
        mats['first_inv'] = complex_to_real(*first, weights,
                                            interleaved=True)
    elif n1 > 1:
        mats['first'] = complex_to_complex(*first, True, False)
    if n2 > 1 or not real:
        # per first-stage frequency k1: rows k1 + n1 * k2, inputs 0..n2-1
        # (the twiddle factor is folded in)
        second = [dft_rows(k1 + n1 * torch.arange(n2), torch.arange(n2),
                           n, 1 / math.sqrt(n2)) for k1 in range(count)]
        mats['second'] = torch.stack([
            complex_to_complex(cr, ci, out_interleaved=real,
                               in_interleaved=False) for cr, ci in second])
    return mats


@functools.lru_cache(maxsize=128)
def _device_matrices(n: int, n1: int, real: bool, dtype: torch.dtype,
                     device: torch.device) -> Dict[str, Tensor]:
    source = _axis_matrices(n, n1, real)
    mats = {
        name: m.to(device=device, dtype=dtype).contiguous()
        for name, m in source.items()
    }
    for name in source:  # a unitary step's inverse is its transpose
        if not name.endswith('_inv') and name + '_inv' not in source:
            mats[name + '_inv'] = mats[name].transpose(-1, -2).contiguous()
    return mats


def contract(matrix: Tensor, x: Tensor, pre: int, post: int) -> Tensor:
    """``matrix (M, K)`` applied to the middle axis of ``x`` viewed as
    ``(pre, K, post)``: ``(pre, M, post)``, one matrix product, never a
    transposing copy of ``x``."""
    if post == 1:
        return torch.matmul(x.reshape(pre, -1), matrix.t())
    x = x.reshape(pre, matrix.shape[1], post)
    if pre == 1 or torch.compiler.is_compiling():
        return torch.matmul(matrix, x)  # traced: MatMul broadcasts
    # eager: the batched product reads the matrix through a zero stride
    # (torch.matmul would copy it once per batch)
    return torch.bmm(matrix.expand(pre, -1, -1), x)


def contract_batched(matrices: Tensor, x: Tensor, pre: int,
                     post: int) -> Tensor:
    """``matrices (G, M, K)``, the g-th applied to ``x`` viewed as ``(pre,
    G, K, post)`` at index g: ``(pre, G, M, post)``."""
    groups, _, size = matrices.shape
    if groups == 1:
        return contract(matrices[0], x, pre, post)
    if post == 1:
        x = x.reshape(pre, groups, 1, size)
        return torch.matmul(x, matrices.transpose(1, 2))
    if pre == 1:
        return torch.bmm(matrices, x.reshape(groups, size, post))
    return torch.matmul(matrices, x.reshape(pre, groups, size, post))


def _outer_inner(shape, dims: Sequence[int]) -> Tuple[int, int]:
    hdim, wdim = dims
    if wdim != hdim + 1:
        raise ValueError(f'the two transformed axes must be adjacent, got '
                         f'{tuple(dims)}')
    return math.prod(shape[:hdim]), math.prod(shape[wdim + 1:])


# -- the matrix forms on a global filter's spectrum --------------------------


class MatrixPlan:
    """The 2-D transform pair of ``'dft'`` (``dense=True``) or
    ``'factored'`` for maps of one size.

    ``H`` (the outer axis) is split ``H = h1 * h2`` and transformed as a real
    input: a real DFT of length ``h1`` over the major digit (its half
    spectrum, ``K1 = h1 // 2 + 1`` frequencies), then, if ``h2 > 1``, a
    complex one of length ``h2`` over the minor digit for each of them with
    the twiddle factors folded in. ``W`` is split ``W = w1 * w2`` and
    transformed as a complex input: length ``w1`` over the major digit (if
    ``w1 > 1``), then length ``w2`` for each result. Each step is one matrix
    product on a view of the previous result. The spectrum of ``x`` viewed
    as ``(outer, H, W, inner)`` comes out as ``(outer, F_H, w1, 2, w2,
    inner)`` with ``F_H = K1 * h2``: element ``(k1 * h2 + k2, j1, q, j2)``
    holds part ``q`` of frequency ``(k1 + h1 k2, j1 + w1 j2)``.

    Args:
        size (tuple[int, int]): ``(H, W)``.
        dense (bool): One product per axis (``'dft'``).
        inner (int): Elements after the two axes (channels for
            channels-last maps, 1 otherwise). ``W`` is only factored when
            this is above 1, where each product is a large one.
        dtype (torch.dtype): Compute dtype.
        device (torch.device): Device.
    """

    def __init__(self, size: Tuple[int, int], dense: bool, inner: int,
                 dtype: torch.dtype, device):
        height, width = size
        self.size = (height, width)
        self.h1, self.h2 = (height, 1) if dense else axis_split(height)
        self.w1, self.w2 = (1, width) if dense or inner == 1 else \
            axis_split(width)
        if self.w2 == 1:  # a prime: one product, the second step's
            self.w1, self.w2 = 1, width
        self.k1 = self.h1 // 2 + 1
        self.rows = self.k1 * self.h2
        self.mats_h = _device_matrices(height, self.h1, True, dtype, device)
        self.mats_w = _device_matrices(width, self.w1, False, dtype, device)

    def frequencies(self) -> Tuple[Tensor, Tensor, Tensor]:
        """``(kh, kw, weights)``: the frequency rows ``(F_H,)`` and columns
        ``(w1 * w2,)`` of the spectrum elements, and each row's weight in
        the inverse (1 or 2)."""
        height, width = self.size
        k1 = torch.arange(self.k1)[:, None]
        kh = (k1 + self.h1 * torch.arange(self.h2)[None]).flatten() % height
        j1 = torch.arange(self.w1)[:, None]
        kw = (j1 + self.w1 * torch.arange(self.w2)[None]).flatten() % width
        weights = half_spectrum_weights(self.h1, self.k1)
        return kh, kw, weights.repeat_interleave(self.h2)

    def spectrum_shape(self, outer: int, inner: int) -> Tuple[int, ...]:
        return (outer, self.rows, self.w1, 2, self.w2, inner)

    def forward(self, x: Tensor, outer: int, inner: int) -> Tensor:
        """The spectrum of the real ``x`` (``(outer, H, W, inner)``
        elements, any shape)."""
        width, h, w = self.size[1], self.mats_h, self.mats_w
        rest = width * inner
        y = contract(h['first'], x, outer, self.h2 * rest)
        if self.h2 > 1:
            y = contract_batched(h['second'], y, outer, rest)
        count = outer * self.rows
        if self.w1 > 1:
            y = contract(w['first'], y, count, self.w2 * inner)
        y = contract_batched(w['second'], y, count, inner)
        return y.reshape(self.spectrum_shape(outer, inner))

    def inverse(self, z: Tensor, outer: int, inner: int) -> Tensor:
        """The real map (``(outer, H * W * inner)``) of the spectrum
        ``z``, the real part of the weighted one-sided sum."""
        (height, width), h, w = self.size, self.mats_h, self.mats_w
        count, rest = outer * self.rows, width * inner
        y = contract_batched(w['second_inv'], z, count, inner)
        if self.w1 > 1:
            y = contract(w['first_inv'], y, count, self.w2 * inner)
        if self.h2 > 1:
            y = contract_batched(h['second_inv'], y, outer, rest)
        y = contract(h['first_inv'], y, outer, self.h2 * rest)
        return y.reshape(outer, height * rest)


def complex_multiply(y: Tensor, g: Tensor, dim: int,
                     conjugate: bool = False) -> Tensor:
    """``y * g`` (or ``y * conj(g)``) for complex tensors stored with their
    parts along ``dim`` (a negative axis), broadcasting ``g``."""
    yr, yi = y.select(dim, 0), y.select(dim, 1)
    gr, gi = g.select(dim, 0), g.select(dim, 1)
    sign = -1 if conjugate else 1
    if torch.is_grad_enabled() and (y.requires_grad or g.requires_grad):
        return torch.stack([yr * gr - sign * yi * gi,
                            sign * yr * gi + yi * gr], dim)
    out = y * gr.unsqueeze(dim)  # (yr gr, yi gr), then the cross terms
    out.select(dim, 0).addcmul_(yi, gi, value=-sign)
    out.select(dim, 1).addcmul_(yr, gi, value=sign)
    return out


# -- between the standard half spectrum and a plan's set ----------------------


@functools.lru_cache(maxsize=64)
def _symmetrize_index(height: int, width: int, rows: Optional[tuple],
                      cols: int, kh: tuple, kw: tuple) -> Dict[str, Tensor]:
    """Where each element ``(kh, kw)`` of a spectrum set takes its value in
    a standard half spectrum ``Z`` (rows ``rows`` of ``rfft2``'s grid, all
    if None; columns ``0 .. cols - 1``; zero elsewhere): the Hermitian
    spectrum ``irfft2`` effectively inverts, ``Z[kh, kw]`` for ``0 < kw <
    W / 2``, ``conj(Z[-kh, W - kw])`` beyond, and the mean of ``Z[kh, kw]``
    and ``conj(Z[-kh, kw])`` in the zero and Nyquist columns."""
    rows = tuple(range(height)) if rows is None else rows
    position = {r: i for i, r in enumerate(rows)}
    zero = len(rows) * cols

    def flat(r, c):
        r %= height
        return position[r] * cols + c if r in position and c < cols \
            else zero

    first, real, imag, second, pairs = [], [], [], [], []
    for i, (r, c) in enumerate((r, c) for r in kh for c in kw):
        if c == 0 or 2 * c == width:
            first.append(flat(r, c))
            real.append(0.5)
            imag.append(0.5)
            second.append(flat(-r, c))
            pairs.append(i)
        elif 2 * c < width:
            first.append(flat(r, c))
            real.append(1.0)
            imag.append(1.0)
        else:
            first.append(flat(-r, width - c))
            real.append(1.0)
            imag.append(-1.0)
    return dict(first=torch.tensor(first), real=torch.tensor(real),
                imag=torch.tensor(imag), second=torch.tensor(second,
                                                             dtype=torch.long),
                pairs=torch.tensor(pairs, dtype=torch.long))


def to_representation(z: Tensor, size: Tuple[int, int], kh: Tensor,
                      kw: Tensor, rows: Optional[Tensor] = None) -> Tensor:
    """The spectrum set ``(kh x kw)`` of the Hermitian spectrum that
    ``irfft2`` inverts when given the standard half spectrum ``z``.

    Args:
        z (Tensor): ``(R, K, D, 2)``: rows ``rows`` (all if None) and the
            first ``K`` columns of ``rfft2``'s grid for ``size``, ``D``
            values each, real and imaginary parts last.
        size (tuple[int, int]): The map size ``(H, W)``.
        kh (Tensor): Frequency rows of the set.
        kw (Tensor): Frequency columns of the set.
        rows (Tensor, optional): Which rows ``z`` holds.

    Returns:
        Tensor: ``(len(kh) * len(kw), D, 2)``, rows major.
    """
    index = _symmetrize_index(*size, _as_tuple(rows), z.shape[1],
                              _as_tuple(kh), _as_tuple(kw))
    flat = torch.cat([z.flatten(0, 1), z.new_zeros(1, *z.shape[2:])])
    scale = torch.stack([index['real'], index['imag']], -1).to(z)
    out = flat[index['first'].to(z.device)] * scale[:, None]
    if len(index['pairs']):
        extra = flat[index['second'].to(z.device)] * torch.tensor(
            [0.5, -0.5]).to(z)
        out = out.index_add(0, index['pairs'].to(z.device), extra)
    return out


def to_representation_adjoint(g: Tensor, z_shape, size: Tuple[int, int],
                              kh: Tensor, kw: Tensor) -> Tensor:
    """The adjoint of :func:`to_representation` (all rows): the gradient
    for ``z`` (of shape ``z_shape``) of the gradient ``g`` of its
    output."""
    index = _symmetrize_index(*size, None, z_shape[1], _as_tuple(kh),
                              _as_tuple(kw))
    scale = torch.stack([index['real'], index['imag']], -1).to(g)
    flat = g.new_zeros(z_shape[0] * z_shape[1] + 1, *g.shape[1:])
    flat.index_add_(0, index['first'].to(g.device), g * scale[:, None])
    if len(index['pairs']):
        pairs = g[index['pairs'].to(g.device)] * torch.tensor(
            [0.5, -0.5]).to(g)
        flat.index_add_(0, index['second'].to(g.device), pairs)
    return flat[:-1].reshape(z_shape)


def _as_tuple(index: Optional[Tensor]) -> Optional[tuple]:
    return None if index is None else tuple(int(i) for i in index)


# -- the standard half spectrum as matrix products ----------------------------


class StandardDFT:
    """``rfft2`` / ``irfft2`` (``'ortho'``) laid out as ``torch.fft`` lays
    them out, as two matrix products each way: the real DFT over ``W``
    (half spectrum), the complex one over ``H``. A spectrum is a pair
    ``(re, im)`` of real tensors, ``dims[0]`` all frequencies in FFT order
    (or ``rows``), ``dims[1]`` columns ``0 .. W // 2`` (or the first
    ``cols``); the inverse treats the others as zero and follows
    ``irfft2``: the zero (and Nyquist) column count with their real part.

    The ``'dft'`` form of the AFNO mixer and the ``'matmul'`` deployment
    lowering (it exports as MatMul and Reshape).

    Args:
        dtype (torch.dtype, optional): Compute dtype. Defaults to the
            input's.
    """
    name = 'matmul'

    def __init__(self, dtype: Optional[torch.dtype] = None):
        self.dtype = dtype

    def _mats(self, x: Tensor, size, rows, cols):
        return standard_matrices(size, _as_tuple(rows), cols,
                                 self.dtype or x.dtype, x.device)

    def rfft2(self, x: Tensor, dims: Sequence[int],
              rows: Optional[Sequence[int]] = None,
              cols: Optional[int] = None) -> Tuple[Tensor, Tensor]:
        z = self.forward(x, dims, rows, cols)
        part = dims[0] + 1
        return z.select(part, 0), z.select(part, 1)

    def forward(self, x: Tensor, dims: Sequence[int],
                rows: Optional[Sequence[int]] = None,
                cols: Optional[int] = None) -> Tensor:
        """The spectrum with its parts as an axis after ``dims[0]``: the
        ``(re, im)`` of :meth:`rfft2` stacked there."""
        outer, inner = _outer_inner(x.shape, dims)
        height, width = x.shape[dims[0]], x.shape[dims[1]]
        mats = self._mats(x, (height, width), rows, cols)
        x = x.to(mats['w'].dtype)
        y = contract(mats['w'], x, outer * height, inner)
        y = contract(mats['h'], y, outer, mats['w'].shape[0] // 2 * inner)
        shape = list(x.shape)
        shape[dims[0]:dims[1] + 1] = [mats['h'].shape[0] // 2, 2,
                                      mats['w'].shape[0] // 2]
        return y.reshape(shape)

    def irfft2(self, re: Tensor, im: Tensor, dims: Sequence[int],
               size: Tuple[int, int],
               rows: Optional[Sequence[int]] = None,
               cols: Optional[int] = None) -> Tensor:
        return self.inverse(torch.stack([re, im], dims[0] + 1), dims, size,
                            rows, cols)

    def inverse(self, z: Tensor, dims: Sequence[int], size: Tuple[int, int],
                rows: Optional[Sequence[int]] = None,
                cols: Optional[int] = None) -> Tensor:
        """The inverse of :meth:`forward`: ``z`` with the parts axis after
        ``dims[0]``, ``dims`` those of the output."""
        outer, inner = _outer_inner(z.shape[:dims[0] + 1] +
                                    z.shape[dims[0] + 2:], dims)
        mats = self._mats(z, size, rows, cols)
        z = z.to(mats['w'].dtype)
        count = mats['w'].shape[0] // 2
        y = contract(mats['h_inv'], z, outer, count * inner)
        y = contract(mats['w_inv'], y, outer * size[0], inner)
        shape = list(z.shape)
        shape[dims[0]:dims[0] + 3] = list(size)
        return y.reshape(shape)


@functools.lru_cache(maxsize=64)
def _standard_matrices(size, rows, cols) -> Dict[str, Tensor]:
    height, width = size
    count = width // 2 + 1 if cols is None else cols
    half = dft_rows(torch.arange(count), torch.arange(width), width,
                    1 / math.sqrt(width))
    freqs = torch.arange(height) if rows is None else torch.tensor(rows)
    full = dft_rows(freqs, torch.arange(height), height,
                    1 / math.sqrt(height))
    weights = half_spectrum_weights(width, count)
    mats = dict(
        # W: real -> parts before frequencies, so (h, p) are adjacent
        w=real_to_complex(*half, interleaved=False),
        w_inv=complex_to_real(*half, weights, interleaved=False),
        # H: (h, p) interleaved in, (k, q) interleaved out
        h=complex_to_complex(*full, True, True))
    mats['h_inv'] = mats['h'].t()
    return mats


@functools.lru_cache(maxsize=128)
def standard_matrices(size, rows, cols, dtype, device) -> Dict[str, Tensor]:
    """The matrices of :class:`StandardDFT` for one size: ``w`` ``(2K,
    W)`` and ``w_inv`` ``(W, 2K)`` (the half-spectrum parts, real then
    imaginary), ``h`` ``(2R, 2H)`` and ``h_inv`` (interleaved parts)."""
    return {
        name: m.to(device=device, dtype=dtype).contiguous()
        for name, m in _standard_matrices(size, rows, cols).items()
    }


# -- per-image regions --------------------------------------------------------


def mix_valid_regions(x: Tensor, sizes: Sequence[Tuple[int, int]],
                      dims: Sequence[int],
                      mix: Callable[[Tensor], Tensor]) -> Tensor:
    """``mix`` applied to each image's own top-left region.

    Images whose regions have the same size are mixed together; the output
    is zero outside each region. With it a spectral layer mixes an image
    over its own valid area whatever the padding of its batch.

    Args:
        x (Tensor): The batch, images along axis 0.
        sizes (Sequence[tuple[int, int]]): Each image's valid ``(h, w)``.
        dims (Sequence[int]): The two spatial axes of ``x``.
        mix (Callable): The layer's mixing on a batch of one size.
    """
    if len(sizes) != x.shape[0]:
        raise ValueError(f'{len(sizes)} valid sizes for a batch of '
                         f'{x.shape[0]}')
    groups: 'OrderedDict[tuple, List[int]]' = OrderedDict()
    for i, size in enumerate(sizes):
        height, width = (int(s) for s in size)
        if not (0 < height <= x.shape[dims[0]]
                and 0 < width <= x.shape[dims[1]]):
            raise ValueError(f'valid size {tuple(size)} of image {i} is '
                             f'not within the map {tuple(x.shape)}')
        groups.setdefault((height, width), []).append(i)
    out = x.new_zeros(x.shape)
    for (height, width), images in groups.items():
        index = torch.tensor(images, device=x.device)
        region = x.index_select(0, index).narrow(dims[0], 0, height).narrow(
            dims[1], 0, width)
        mixed = mix(region)
        padded = out.new_zeros((len(images), ) + tuple(out.shape[1:]))
        padded.narrow(dims[0], 0, height).narrow(dims[1], 0,
                                                 width).copy_(mixed)
        out = out.index_copy(0, index, padded.to(out.dtype))
    return out


# -- the standard half spectrum as an op (the AFNO mixer) ---------------------


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


def _kept(size: Tuple[int, int], fraction: float):
    """``(rows or None, cols)`` of :func:`kept_mode_indices`; None: all."""
    if fraction >= 1:
        return None, size[1] // 2 + 1
    rows, cols = kept_mode_indices(*size, fraction)
    return tuple(rows.tolist()), cols


def _transform_candidates(size) -> List[str]:
    return ['fft', 'dft'] if sum(size) <= 1024 else ['fft']


def standard_forward(x: Tensor, fraction: float, impl: str,
                     dtype: torch.dtype) -> Tensor:
    """The kept modes (:func:`kept_mode_indices`) of ``rfft2(x)`` for a
    ``(B, H, W, C)`` map, as ``(B, R, 2, K, C)`` in ``dtype``."""
    size = (int(x.shape[1]), int(x.shape[2]))
    rows, cols = _kept(size, fraction)

    def run(chosen: str) -> Tensor:
        if chosen != 'fft':
            return StandardDFT(dtype).forward(x, (1, 2), rows, cols)
        with torch.autocast(x.device.type, enabled=False):
            spectrum = torch.fft.rfft2(x.float(), dim=(1, 2), norm='ortho')
        if rows is not None:
            spectrum = spectrum[:, list(rows), :cols]
        return torch.view_as_real(spectrum).permute(0, 1, 4, 2, 3).to(
            dtype).contiguous()

    return run(resolve_impl(impl, 'rdft2', x, (1, 2), dtype,
                            _transform_candidates(size), run))


def standard_inverse(z: Tensor, size: Tuple[int, int], fraction: float,
                     impl: str, dtype: torch.dtype) -> Tensor:
    """The inverse of :func:`standard_forward`: ``irfft2`` of the kept
    modes ``z`` (the others zero), ``(B, H, W, C)`` in ``dtype``."""
    rows, cols = _kept(size, fraction)

    def run(chosen: str) -> Tensor:
        if chosen != 'fft':
            return StandardDFT(dtype).inverse(z, (1, 2), size, rows, cols)
        with torch.autocast(z.device.type, enabled=False):
            kept = torch.complex(z[:, :, 0].float(), z[:, :, 1].float())
            if rows is not None or cols < size[1] // 2 + 1:
                spectrum = kept.new_zeros(z.shape[0], size[0],
                                          size[1] // 2 + 1, z.shape[-1])
                row_index = slice(None) if rows is None else list(rows)
                spectrum[:, row_index, :cols] = kept
                kept = spectrum
            out = torch.fft.irfft2(kept, s=size, dim=(1, 2), norm='ortho')
        return out.to(dtype)

    like = z.new_empty(z.shape[0], *size, z.shape[-1])
    return run(resolve_impl(impl, 'irdft2', like, (1, 2), dtype,
                            _transform_candidates(size), run))


def _kept_shape(size, fraction: float) -> Tuple[int, int]:
    """``(R, K)`` of the kept modes, symbolic sizes allowed for all."""
    if fraction >= 1:
        return size[0], size[1] // 2 + 1
    rows, cols = _kept((int(size[0]), int(size[1])), fraction)
    return len(rows), cols


@torch.library.custom_op('mmspectral::rdft2', mutates_args=())
def _rdft2_op(x: Tensor, fraction: float, impl: str,
              dtype: torch.dtype) -> Tensor:
    return standard_forward(x.contiguous(), fraction, impl, dtype)


@_rdft2_op.register_fake
def _(x, fraction, impl, dtype):
    rows, cols = _kept_shape(x.shape[1:3], fraction)
    return x.new_empty((x.shape[0], rows, 2, cols, x.shape[3]), dtype=dtype)


@torch.library.custom_op('mmspectral::irdft2', mutates_args=())
def _irdft2_op(z: Tensor, height: int, width: int, fraction: float,
               impl: str, dtype: torch.dtype) -> Tensor:
    return standard_inverse(z.contiguous(), (height, width), fraction, impl,
                            dtype)


@_irdft2_op.register_fake
def _(z, height, width, fraction, impl, dtype):
    return z.new_empty((z.shape[0], height, width, z.shape[-1]), dtype=dtype)


def _column_weights(width: int, count: int, like: Tensor) -> Tensor:
    weights = half_spectrum_weights(width, count).to(like.device, like.dtype)
    return weights.view(-1, 1)


def _rdft2_setup(ctx, inputs, output):
    x, fraction, impl, dtype = inputs
    ctx.args = (x.shape[1], x.shape[2], fraction, impl, dtype, x.dtype)


def _rdft2_backward(ctx, grad):
    height, width, fraction, impl, dtype, x_dtype = ctx.args
    # the adjoint of the forward transform is the inverse with the
    # inverse's weights divided out
    grad = grad / _column_weights(width, grad.shape[3], grad)
    return _irdft2_op(grad, height, width, fraction, impl,
                      dtype).to(x_dtype), None, None, None


def _irdft2_setup(ctx, inputs, output):
    z, height, width, fraction, impl, dtype = inputs
    ctx.args = (width, fraction, impl, dtype, z.dtype)


def _irdft2_backward(ctx, grad):
    width, fraction, impl, dtype, z_dtype = ctx.args
    spectrum = _rdft2_op(grad, fraction, impl, dtype)
    spectrum = spectrum * _column_weights(width, spectrum.shape[3], spectrum)
    return (spectrum.to(z_dtype), ) + (None, ) * 5


_rdft2_op.register_autograd(_rdft2_backward, setup_context=_rdft2_setup)
_irdft2_op.register_autograd(_irdft2_backward, setup_context=_irdft2_setup)


def rdft2(x: Tensor, fraction: float, impl: str,
          dtype: torch.dtype) -> Tensor:
    """:func:`standard_forward` as the op ``mmspectral::rdft2`` (autograd
    and ``torch.compile`` see it whole); plain operators while
    ``torch.jit`` traces (FLOP counters)."""
    if torch.jit.is_tracing():
        return standard_forward(x, fraction, impl, dtype)
    return _rdft2_op(x, fraction, impl, dtype)


def irdft2(z: Tensor, size: Tuple[int, int], fraction: float, impl: str,
           dtype: torch.dtype) -> Tensor:
    """:func:`standard_inverse` as the op ``mmspectral::irdft2``, see
    :func:`rdft2`."""
    if torch.jit.is_tracing():
        return standard_inverse(z, size, fraction, impl, dtype)
    return _irdft2_op(z, size[0], size[1], fraction, impl, dtype)
