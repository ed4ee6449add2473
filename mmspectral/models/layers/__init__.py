from .afno import AFNO2d, kept_mode_indices
from .attention import ClassAttention, MultiheadSelfAttention
from .global_filter import (RESIZE_MODES, GlobalFilter, filter_resize_matrices,
                            resize_filter)
from .layer_scale import LayerScale
from .mlp import ConvMlp, Mlp
from .norm import LayerNorm2d, build_norm2d
from .position_embedding import PositionEmbedding, resize_pos_embed
from .spectral import (SPECTRAL_IMPLS, TIMINGS, SpectralLayer,
                       SpectralTimings, set_spectral_impl)
from .utils import CheckpointedBlock, ResizeCache, pad_to_multiple, to_2tuple

__all__ = [
    'AFNO2d', 'kept_mode_indices', 'ClassAttention', 'MultiheadSelfAttention',
    'ConvMlp', 'RESIZE_MODES', 'GlobalFilter', 'filter_resize_matrices',
    'resize_filter', 'LayerScale', 'Mlp', 'LayerNorm2d', 'build_norm2d',
    'PositionEmbedding', 'resize_pos_embed', 'SPECTRAL_IMPLS', 'TIMINGS',
    'SpectralLayer', 'SpectralTimings', 'set_spectral_impl',
    'CheckpointedBlock', 'ResizeCache', 'pad_to_multiple', 'to_2tuple'
]
