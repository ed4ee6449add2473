"""FLOP counting with the spectral operators included.

mmengine's :class:`~mmengine.analysis.FlopAnalyzer` (fvcore's counter) counts
one multiply-add as one FLOP and skips the FFT, complex element-wise products
and fused attention. These handles add them:

* ``rfft2`` / ``irfft2`` over a real ``H x W`` map with ``C`` other elements
  (batch x channels): ``N * C * ceil(log2 N)`` with ``N = H * W``, the
  convention of the GFNet authors (GFNet issues #3 and #12), for each
  transform;
* an element-wise product with a complex result (the global filter): one per
  output element, ``H * (W // 2 + 1) * C``, as in the GFNet paper's Table 1;
* ``einsum`` over complex operands (the AFNO block MLP): four real
  multiply-adds per complex multiply-add;
* ``scaled_dot_product_attention``: ``B * heads * N * M * (d + d_v)``, the
  two matrix products it replaces.
"""
import math
from typing import Any, Dict, List, Sequence

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.jit_handles import einsum_flop_jit, get_shape


def fft2_flops(shape: Sequence[int], dims: Sequence[int]) -> int:
    """FLOPs of one 2-D real FFT (either direction) of a real tensor of
    ``shape`` over ``dims``: ``N * C * ceil(log2 N)``."""
    dims = [d % len(shape) for d in dims]
    points = math.prod(shape[d] for d in dims)
    others = math.prod(s for i, s in enumerate(shape) if i not in dims)
    return points * others * math.ceil(math.log2(points)) if points > 1 else 0


def _fft_dims(inputs: List[Any], rank: int) -> Sequence[int]:
    # fft_rfft2(self, s, dim, norm): dim is a list of constants in the trace
    node = inputs[2].node()
    if node.kind() == 'prim::ListConstruct':
        return [value.toIValue() for value in node.inputs()]
    dims = inputs[2].toIValue()
    return dims if dims is not None else (rank - 2, rank - 1)


def rfft2_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    shape = get_shape(inputs[0])
    return fft2_flops(shape, _fft_dims(inputs, len(shape)))


def irfft2_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    # count on the real output map, the same N as the forward transform
    shape = get_shape(outputs[0])
    return fft2_flops(shape, _fft_dims(inputs, len(shape)))


def _is_complex(value) -> bool:
    scalar_type = getattr(value.type(), 'scalarType', lambda: None)()
    return scalar_type is not None and 'Complex' in scalar_type


def complex_mul_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """Complex element-wise products count one per output element; real
    ones stay uncounted, as in fvcore."""
    if not _is_complex(outputs[0]):
        return 0
    return math.prod(get_shape(outputs[0]))


def complex_einsum_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    flops = einsum_flop_jit(inputs, outputs)
    return 4 * flops if _is_complex(outputs[0]) else flops


def sdpa_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    query, key, value = (get_shape(v) for v in inputs[:3])
    batch = math.prod(query[:-2])
    return batch * query[-2] * key[-2] * (query[-1] + value[-1])


SPECTRAL_OP_HANDLES = {
    'aten::fft_rfft2': rfft2_flop_jit,
    'aten::fft_irfft2': irfft2_flop_jit,
    'aten::mul': complex_mul_flop_jit,
    'aten::mul_': complex_mul_flop_jit,
    'aten::einsum': complex_einsum_flop_jit,
    'aten::scaled_dot_product_attention': sdpa_flop_jit,
}


class _TensorMode(nn.Module):
    """Calls an OpenMMLab model in ``mode='tensor'`` so it can be traced."""

    def __init__(self, model: nn.Module, data_samples=None):
        super().__init__()
        self.model = model
        self.data_samples = data_samples

    def forward(self, inputs):
        return self.model(inputs, self.data_samples, mode='tensor')


def flop_analyzer(model: nn.Module, inputs) -> FlopAnalyzer:
    """A quiet :class:`FlopAnalyzer` with the spectral handles installed.

    Args:
        model (nn.Module): A plain module, traced with ``model(*inputs)``.
        inputs (Tensor | tuple): Its inputs.
    """
    analyzer = FlopAnalyzer(model, inputs).set_op_handle(
        **SPECTRAL_OP_HANDLES)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    return analyzer


def count_flops(model: nn.Module, inputs) -> int:
    """Total FLOPs (multiply-adds) of ``model(*inputs)`` in eval mode.

    The model runs once before it is traced so that one-off work of the first
    call at a new size (resizing filters and position embeddings, which eval
    mode caches) is not counted.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(*inputs)
            return int(flop_analyzer(model, inputs).total())
    finally:
        model.train(was_training)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_flops(model: nn.Module, height: int, width: int,
                data_samples=None) -> Dict[str, int]:
    """FLOPs and parameters of an OpenMMLab model (classifier, detector,
    segmentor, called in ``mode='tensor'``) or of a bare backbone on one
    ``3 x height x width`` image."""
    image = torch.randn(1, 3, height, width)
    if hasattr(model, 'data_preprocessor'):
        model = _TensorMode(model, data_samples)
    return dict(flops=count_flops(model, (image, )),
                params=count_parameters(model))
