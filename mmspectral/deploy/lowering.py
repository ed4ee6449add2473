"""How the spectral layers are computed for an exported graph.

A lowering is an implementation the deployment code puts into the spectral
layers of a model (:func:`spectral_lowering`), as mmdeploy keeps its
rewrites outside the model: each :class:`~mmspectral.models.layers.
GlobalFilter` and :class:`~mmspectral.models.layers.AFNO2d` then asks it
for its output, computed with operators every ONNX runtime has:

* ``'matmul'``: the spectral engine's ``'dft'`` form, the DFT as products
  with real constant matrices (:class:`~mmspectral.models.layers.spectral.
  StandardDFT`), exact up to float32 rounding, for every runtime (ONNX
  Runtime, OpenVINO, TensorRT, ...), fast where matrix products are fast;
* ``'dft'``: the standard ONNX ``DFT`` operator (opset 17,
  :mod:`.transforms`), for runtimes with a fast FFT kernel behind it.

Both compute exactly what the layer computes with ``torch.fft`` (the same
half spectrum, the same treatment of the zero and Nyquist columns), so an
exported model matches the PyTorch one. Whatever a layer derives from its
weights for one map size (the filter resized to the size) is computed once,
outside any trace, and enters the graph as a constant: run one eager
forward under the lowering before exporting (see
:func:`mmspectral.deploy.export.prepare_lowering`).
"""
import contextlib
from typing import Callable, Hashable, Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from mmspectral.models.layers.spectral import (SpectralLayer, StandardDFT,
                                               set_spectral_impl)

LOWERINGS = ('matmul', 'dft')


class LoweringError(RuntimeError):
    """A spectral layer cannot be lowered as asked."""


class SpectralLowering:
    """Computes the spectral layers for export with one 2-D real FFT pair.

    Args:
        transforms: The pair used, an object with ``rfft2(x, dims, rows,
            cols)`` and ``irfft2(re, im, dims, size, rows, cols)`` on real
            tensors (see :class:`~mmspectral.models.layers.spectral.
            StandardDFT`).
    """

    def __init__(self, transforms):
        self.transforms = transforms
        self.name = transforms.name
        self._constants = {}

    def __repr__(self) -> str:
        return f'SpectralLowering({self.name!r})'

    def constant(self, layer: nn.Module, key: Hashable,
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
            weight = layer.standard_filter(size).detach()  # (h, w, C, 2)
            if not layer.channels_last:
                weight = weight.permute(2, 0, 1, 3)
            return weight[..., 0].contiguous(), weight[..., 1].contiguous()

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
        re, im = self.transforms.rfft2(x.float(), (1, 2), rows, cols)
        re, im = layer.frequency_mlp(re, im)
        return self.transforms.irfft2(re, im, (1, 2), size, rows, cols)


def _kept_modes(layer, size) -> Tuple[Optional[tuple], Optional[int]]:
    """AFNO's kept frequency rows and column count at ``size``, or None
    for all."""
    if layer.hard_thresholding_fraction >= 1:
        return None, None
    return layer.kept_modes(size)


def get_lowering(name: str) -> SpectralLowering:
    """A new :class:`SpectralLowering` called ``name`` (one of
    :data:`LOWERINGS`)."""
    if name == 'matmul':
        return SpectralLowering(StandardDFT(torch.float32))
    if name == 'dft':
        from .transforms import DFTOpTransforms
        return SpectralLowering(DFTOpTransforms())
    raise ValueError(f'unknown spectral lowering {name!r}; expected one of '
                     f'{LOWERINGS}')


@contextlib.contextmanager
def spectral_lowering(module: nn.Module, lowering):
    """Inside the block, every spectral layer of ``module`` computes with
    ``lowering`` (a name of :data:`LOWERINGS` or a
    :class:`SpectralLowering`); yields the lowering. Each layer gets its
    own ``impl`` back afterwards."""
    if isinstance(lowering, str):
        lowering = get_lowering(lowering)
    layers = [m for m in module.modules() if isinstance(m, SpectralLayer)]
    previous = [layer.impl for layer in layers]
    set_spectral_impl(module, lowering)
    try:
        yield lowering
    finally:
        for layer, impl in zip(layers, previous):
            layer.impl = impl
