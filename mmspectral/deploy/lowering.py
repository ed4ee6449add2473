"""How the spectral layers are computed for an exported graph.

By default :class:`~mmspectral.models.layers.GlobalFilter` and
:class:`~mmspectral.models.layers.AFNO2d` run ``torch.fft``. Inside
``with spectral_lowering('matmul'):`` (or ``'dft'``) they ask the active
lowering to compute their spectral part instead, with operators every ONNX
runtime has:

* ``'matmul'``: the DFT written as products with real constant matrices
  (cosines and sines of the map's size), exact up to float32 rounding, for
  every runtime (ONNX Runtime, OpenVINO, TensorRT, ...), fast where matrix
  products are fast;
* ``'dft'``: the standard ONNX ``DFT`` operator (opset 17), for runtimes
  with a fast FFT kernel behind it.

Both compute exactly what the layer computes with ``torch.fft`` (the same
half spectrum, the same treatment of the zero and Nyquist columns), so an
exported model matches the PyTorch one. Whatever a layer derives from its
weights for one map size (the filter resized to the size, the DFT matrices)
is computed once, outside any trace, and enters the graph as a constant: run
one eager forward under the lowering before exporting (see
:func:`mmspectral.deploy.export.prepare_lowering`).

This module only imports torch, so that the layers can ask it for the active
lowering at no cost.
"""
import contextlib
from typing import Callable, Hashable, Optional, Sequence, Tuple

import torch
from torch import Tensor

LOWERINGS = ('matmul', 'dft')

_active: Optional['SpectralLowering'] = None


def active_lowering() -> Optional['SpectralLowering']:
    """The lowering set by :func:`spectral_lowering`, or None (torch.fft)."""
    return _active


class LoweringError(RuntimeError):
    """A spectral layer cannot be lowered as asked."""


class SpectralLowering:
    """Computes the spectral layers for export with one set of transforms.

    Args:
        transforms: The 2-D real FFT pair used (see
            :mod:`mmspectral.deploy.transforms`).
    """

    def __init__(self, transforms):
        self.transforms = transforms
        self.name = transforms.name
        self._constants = {}

    def __repr__(self) -> str:
        return f'SpectralLowering({self.name!r})'

    def constant(self, layer: torch.nn.Module, key: Hashable,
                 compute: Callable[[], object]):
        """``compute()`` for ``layer`` and ``key`` (tensors detached from
        the weights, or plain values), computed once without gradients and
        kept (with the layer) for the life of this lowering.

        Raises:
            LoweringError: The value is missing while a graph is traced: a
                value computed inside the trace would put the resizing of the
                weights into the graph instead of a constant.
        """
        # keyed by the attribute dict: torch.export calls the layers through
        # proxies that share it, not through the modules themselves
        _, store = self._constants.setdefault(id(vars(layer)), (layer, {}))
        if key not in store:
            if torch.compiler.is_compiling():
                raise LoweringError(
                    f'{type(layer).__name__}: the {self.name} lowering has no '
                    f'constants for {key}; run one eager forward of the model'
                    ' at the export size under the lowering before tracing '
                    '(mmspectral.deploy.export.prepare_lowering)')
            with torch.no_grad():
                store[key] = compute()
        return store[key]

    def global_filter(self, layer, x: Tensor) -> Tensor:
        """The output of a :class:`GlobalFilter` ``layer`` on ``x``."""
        dims = (1, 2) if layer.channels_last else (2, 3)
        size = (int(x.shape[dims[0]]), int(x.shape[dims[1]]))

        def split_filter():
            weight = layer.complex_filter(size).detach()
            return weight.real.contiguous(), weight.imag.contiguous()

        w_re, w_im = self.constant(layer, ('filter', size), split_filter)
        re, im = self.transforms.rfft2(x.float(), dims)
        re, im = re * w_re - im * w_im, re * w_im + im * w_re
        return self.transforms.irfft2(re, im, dims, size).to(x.dtype)

    def afno(self, layer, x: Tensor) -> Tensor:
        """The spectral branch of an :class:`AFNO2d` ``layer`` on ``(B, H, W,
        C)`` ``x``, float32 and without the residual (the layer adds it)."""
        size = (int(x.shape[1]), int(x.shape[2]))
        rows, cols = self.constant(layer, ('modes', size),
                                   lambda: _kept_modes(layer, size))
        weights = self.constant(layer, 'mlp', lambda: _mlp_weights(layer))
        re, im = self.transforms.rfft2(x.float(), (1, 2), rows, cols)
        re, im = _block_mlp(re, im, weights, layer.num_blocks,
                            layer.sparsity_threshold)
        return self.transforms.irfft2(re, im, (1, 2), size, rows, cols)


def _kept_modes(layer, size) -> Tuple[Optional[tuple], Optional[int]]:
    """AFNO's kept frequency rows and column count at ``size``, or None
    for all."""
    from mmspectral.models.layers.afno import kept_mode_indices
    if layer.hard_thresholding_fraction >= 1:
        return None, None
    rows, cols = kept_mode_indices(*size, layer.hard_thresholding_fraction)
    return tuple(rows.tolist()), cols


def _mlp_weights(layer) -> Tuple[Tensor, ...]:
    """AFNO's block weights, real and imaginary parts, shaped for
    :func:`_block_mlp`: ``(nb, in, out)`` and biases ``(nb, 1, out)``."""
    w1, b1, w2, b2 = (p.detach().float()
                      for p in (layer.w1, layer.b1, layer.w2, layer.b2))
    return (w1[0], w1[1], b1[0].unsqueeze(1), b1[1].unsqueeze(1), w2[0],
            w2[1], b2[0].unsqueeze(1), b2[1].unsqueeze(1))


def _block_mlp(re: Tensor, im: Tensor, weights: Sequence[Tensor],
               num_blocks: int, threshold: float) -> Tuple[Tensor, Tensor]:
    """AFNO's complex block MLP in real arithmetic on ``(..., C)`` parts:
    ``softshrink(W2 relu(W1 x + b1) + b2)``, ReLU and softshrink on the real
    and imaginary parts separately, as the layer does."""
    w1r, w1i, b1r, b1i, w2r, w2i, b2r, b2i = weights
    shape = re.shape
    # (nb, N, block): one batched product per block
    re = re.reshape(-1, num_blocks, shape[-1] // num_blocks).transpose(0, 1)
    im = im.reshape(-1, num_blocks, shape[-1] // num_blocks).transpose(0, 1)
    hr = torch.relu(re @ w1r - im @ w1i + b1r)
    hi = torch.relu(re @ w1i + im @ w1r + b1i)
    re = torch.nn.functional.softshrink(hr @ w2r - hi @ w2i + b2r, threshold)
    im = torch.nn.functional.softshrink(hr @ w2i + hi @ w2r + b2i, threshold)
    return (re.transpose(0, 1).reshape(shape),
            im.transpose(0, 1).reshape(shape))


def get_lowering(name: str) -> SpectralLowering:
    """A new :class:`SpectralLowering` called ``name`` (one of
    :data:`LOWERINGS`)."""
    from . import transforms
    if name == 'matmul':
        return SpectralLowering(transforms.MatmulTransforms())
    if name == 'dft':
        return SpectralLowering(transforms.DFTOpTransforms())
    raise ValueError(f'unknown spectral lowering {name!r}; expected one of '
                     f'{LOWERINGS}')


@contextlib.contextmanager
def spectral_lowering(lowering):
    """Compute the spectral layers with ``lowering`` (a name of
    :data:`LOWERINGS` or a :class:`SpectralLowering`) inside the block;
    yields the lowering. ``None`` keeps torch.fft."""
    global _active
    if isinstance(lowering, str):
        lowering = get_lowering(lowering)
    previous, _active = _active, lowering
    try:
        yield lowering
    finally:
        _active = previous
