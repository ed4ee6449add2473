"""SegFormer's Mix Transformer (MiT) with AFNO token mixers.

The AFNO paper's Cityscapes experiment (Guibas et al., ICLR 2022,
https://arxiv.org/abs/2111.13587, Sec. 5) replaces the efficient
self-attention of SegFormer-B3 (Xie et al., 2021,
https://arxiv.org/abs/2105.15203) with AFNO. The layout and weight names
follow mmseg's ``MixVisionTransformer``, so an mmseg MiT checkpoint loads
into every weight that still exists (patch embeddings, Mix-FFNs, norms).
"""
import re
from typing import Optional, Union

import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks import DropPath
from torch import Tensor

from mmspectral.registry import MODELS
from ..layers import AFNO2d, CheckpointedBlock
from .base import (SpectralBackbone, ValidRegions, filter_sizes, run_padded,
                   zero_padding)


class AFNOMiTLayer(CheckpointedBlock):
    """A MiT encoder layer with AFNO in place of efficient self-attention,
    keeping SegFormer's two residuals on ``(B, N, C)`` tokens::

        x = x + drop_path(afno(norm1(x)))   # AFNO2d adds norm1(x) itself
        x = x + drop_path(mix_ffn(norm2(x)))

    Args:
        embed_dims (int): Channels.
        num_blocks (int): AFNO blocks (the heads of the replaced attention).
        feedforward_channels (int): Hidden channels of the Mix-FFN.
        drop_rate (float): Dropout in the Mix-FFN. Defaults to 0.
        drop_path_rate (float): Stochastic depth. Defaults to 0.
        sparsity_threshold (float): AFNO softshrink. Defaults to 0.01.
        hard_thresholding_fraction (float): Kept fraction of frequencies per
            axis. Defaults to 1.
        norm_cfg (dict): Norm config. Defaults to ``dict(type='LN',
            eps=1e-6)``.
        with_cp (bool): Gradient checkpointing. Defaults to False.
    """

    def __init__(self,
                 embed_dims: int,
                 num_blocks: int,
                 feedforward_channels: int,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 sparsity_threshold: float = 0.01,
                 hard_thresholding_fraction: float = 1.,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 with_cp: bool = False):
        super().__init__()
        from mmseg.models.backbones.mit import MixFFN
        self.with_cp = with_cp
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.filter = AFNO2d(
            embed_dims,
            num_blocks,
            sparsity_threshold=sparsity_threshold,
            hard_thresholding_fraction=hard_thresholding_fraction)
        self.drop_path = DropPath(
            drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.ffn = MixFFN(
            embed_dims=embed_dims,
            feedforward_channels=feedforward_channels,
            ffn_drop=drop_rate,
            dropout_layer=dict(type='DropPath', drop_prob=drop_path_rate))

    def _forward(self, x: Tensor, hw_shape,
                 regions: Optional[ValidRegions] = None) -> Tensor:
        grid = self.norm1(x).unflatten(1, hw_shape)
        mixed = self.filter(grid, valid_sizes=filter_sizes(regions))
        x = x + self.drop_path(mixed.flatten(1, 2))
        if filter_sizes(regions) is None:
            return self.ffn(self.norm2(x), hw_shape, identity=x)
        # mmseg's MixFFN with the padding zeroed before its depthwise conv
        y = self.norm2(x).transpose(1, 2).unflatten(2, hw_shape)
        y, _ = run_padded(self.ffn.layers, y, regions)
        return x + self.ffn.dropout_layer(y.flatten(2).transpose(1, 2))


@MODELS.register_module()
class AFNOMiT(SpectralBackbone):
    """SegFormer's MiT encoder with AFNO token mixers, for any input size.

    Four stages of overlapping patch embeddings (strides 4, 2, 2, 2) and
    AFNO + Mix-FFN layers; stage ``i`` has size ``ceil(H / 2**(i+2))``.
    The archs are mmseg's MiT-B0..B5 (mmseg's ``embed_dims * num_heads``
    are the stage widths here); each stage's AFNO mixer has as many blocks
    as MiT has attention heads there, and the spatial-reduction attention
    (and its ratios) is gone.

    Args:
        arch (str | dict): ``'b0'``..``'b5'``, or a dict with ``embed_dims``
            (the four stage widths), ``depths`` (layers per stage) and
            ``num_blocks`` (AFNO blocks per stage), and optionally
            ``mlp_ratio`` (Mix-FFN width ratio, 4). Defaults to ``'b0'``.
        sparsity_threshold (float): AFNO softshrink. Defaults to 0.01.
        hard_thresholding_fraction (float): Kept fraction of frequencies per
            axis; the paper keeps 25% of the modes (0.5 per axis) at a cost of
            ~0.05 mIoU. Defaults to 1.
        **kwargs: The arguments every backbone shares, see
            :class:`SpectralBackbone` (the stem of ``frozen_stages`` is the
            first patch embedding; AFNO-MiT stores nothing for an image size
            and has no global filters). ``init_cfg`` may load an mmseg MiT
            checkpoint: its patch embeddings, Mix-FFNs and norms fit, its
            attention weights are skipped.
    """
    arch_zoo = {
        'b0': {'embed_dims': [32, 64, 160, 256], 'depths': [2, 2, 2, 2],
               'num_blocks': [1, 2, 5, 8]},
        'b1': {'embed_dims': [64, 128, 320, 512], 'depths': [2, 2, 2, 2],
               'num_blocks': [1, 2, 5, 8]},
        'b2': {'embed_dims': [64, 128, 320, 512], 'depths': [3, 4, 6, 3],
               'num_blocks': [1, 2, 5, 8]},
        'b3': {'embed_dims': [64, 128, 320, 512], 'depths': [3, 4, 18, 3],
               'num_blocks': [1, 2, 5, 8]},
        'b4': {'embed_dims': [64, 128, 320, 512], 'depths': [3, 8, 27, 3],
               'num_blocks': [1, 2, 5, 8]},
        'b5': {'embed_dims': [64, 128, 320, 512], 'depths': [3, 6, 40, 3],
               'num_blocks': [1, 2, 5, 8]},
    }  # yapf: disable
    essential_keys = ('embed_dims', 'depths', 'num_blocks')
    optional_keys = ('mlp_ratio', )
    # an mmseg MiT checkpoint has attention where this backbone has AFNO
    # mixers, which train from scratch
    pretrained_missing_ok = re.compile(r'^norm\d*\.|\.filter\.')
    pretrained_unused_ok = re.compile(r'^norm\d*\.|\.attn\.')
    pretrained_source = ('Use an mmseg MiT checkpoint of the same width (the '
                         "one mmseg's SegFormer config of that size loads)")
    patch_sizes, strides = (7, 3, 3, 3), (4, 2, 2, 2)

    default_resize_mode = None
    stores_sized_weights = False
    fan_out_conv_init = True

    def __init__(self,
                 arch: Union[str, dict] = 'b0',
                 *,
                 sparsity_threshold: float = 0.01,
                 hard_thresholding_fraction: float = 1.,
                 **kwargs):
        super().__init__(arch, **kwargs)
        from mmseg.models.utils import PatchEmbed
        dims = self.embed_dims
        mlp_ratio = self.arch_settings.get('mlp_ratio', 4)
        self.layers = nn.ModuleList()
        for i, rates in enumerate(
                self.stage_drop_path_rates(self.arch_settings['depths'])):
            self.layers.append(
                nn.ModuleList([
                    PatchEmbed(
                        in_channels=self.in_channels if i == 0 else
                        dims[i - 1],
                        embed_dims=dims[i],
                        kernel_size=self.patch_sizes[i],
                        stride=self.strides[i],
                        padding=self.patch_sizes[i] // 2,
                        norm_cfg=self.norm_cfg),
                    nn.ModuleList([
                        AFNOMiTLayer(
                            dims[i],
                            self.arch_settings['num_blocks'][i],
                            mlp_ratio * dims[i],
                            drop_rate=self.drop_rate,
                            drop_path_rate=rate,
                            sparsity_threshold=sparsity_threshold,
                            hard_thresholding_fraction=(
                                hard_thresholding_fraction),
                            norm_cfg=self.norm_cfg,
                            with_cp=self.with_cp) for rate in rates
                    ]),
                    build_norm_layer(self.norm_cfg, dims[i])[1],
                ]))

    def stage_parts(self, index: int) -> list:
        if index == 0:
            return [self.layers[0][0]]
        stage = self.layers[index - 1]
        return list(stage[1:]) if index == 1 else [stage]

    def forward(self, x: Tensor) -> tuple:
        x, regions = self.input_regions(x)
        outs = []
        for i, (patch_embed, layers, norm) in enumerate(self.layers):
            x, hw_shape = patch_embed(zero_padding(x, regions))
            if regions is not None:
                regions = regions.at(self.strides[i], hw_shape)
            for layer in layers:
                x = layer(x, hw_shape, regions)
            x = norm(x).transpose(1, 2).unflatten(2, hw_shape)
            x = zero_padding(x, regions).contiguous()
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
