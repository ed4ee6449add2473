"""GFNet: Global Filter Networks for Image Classification.

Rao et al., NeurIPS 2021 / TPAMI 2023, https://arxiv.org/abs/2107.00645.
Reproduces the behaviour and checkpoints of
https://github.com/raoyongming/GFNet.
"""
from typing import List, Optional, Union

import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks import DropPath
from torch import Tensor

from mmspectral.registry import MODELS
from ..layers import (CheckpointedBlock, GlobalFilter, LayerScale, Mlp,
                      pad_to_multiple)
from .base import (IsotropicBackbone, SpectralBackbone, ValidRegions,
                   filter_sizes, run_blocks, zero_padding)


class GFNetBlock(CheckpointedBlock):
    """``x + drop_path(gamma * mlp(norm2(filter(norm1(x)))))`` on ``(B, H, W,
    C)`` maps: one residual per block, the filter and MLP in series.

    Args:
        embed_dims (int): Channels.
        spatial_size (int | tuple[int, int]): Native size of the filter.
        mlp_ratio (float): Hidden/input channels of the MLP. Defaults to 4.
        drop_rate (float): Dropout in the MLP. Defaults to 0.
        drop_path_rate (float): Stochastic depth of the residual branch.
            Defaults to 0.
        layer_scale_init_value (float): Initial layer scale; 0 builds none
            (isotropic GFNet). Defaults to 0.
        resize_mode (str): Filter resize mode, see :class:`GlobalFilter`.
            Defaults to ``'frequency'``.
        norm_cfg (dict): Config of the two norms. Defaults to
            ``dict(type='LN', eps=1e-6)``.
        with_cp (bool): Use gradient checkpointing. Defaults to False.
    """

    def __init__(self,
                 embed_dims: int,
                 spatial_size,
                 mlp_ratio: float = 4.,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 layer_scale_init_value: float = 0.,
                 resize_mode: str = 'frequency',
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 with_cp: bool = False):
        super().__init__()
        self.with_cp = with_cp
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.filter = GlobalFilter(embed_dims, spatial_size, resize_mode)
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio),
                       drop_rate=drop_rate)
        self.layer_scale = LayerScale(
            embed_dims, layer_scale_init_value
        ) if layer_scale_init_value > 0 else nn.Identity()
        self.drop_path = DropPath(
            drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def _forward(self, x: Tensor,
                 regions: Optional[ValidRegions] = None) -> Tensor:
        y = self.filter(self.norm1(x), valid_sizes=filter_sizes(regions))
        y = self.mlp(self.norm2(y))
        return x + self.drop_path(self.layer_scale(y))


def _make_blocks(backbone: 'SpectralBackbone', embed_dims: int,
                 spatial_size: int, drop_path_rates: List[float],
                 layer_scale_init_value: float = 0.) -> nn.Sequential:
    """GFNet blocks with the backbone's shared settings."""
    return nn.Sequential(*[
        GFNetBlock(
            embed_dims,
            spatial_size,
            mlp_ratio=backbone.arch_settings['mlp_ratio'],
            drop_rate=backbone.drop_rate,
            drop_path_rate=rate,
            layer_scale_init_value=layer_scale_init_value,
            resize_mode=backbone.resize_mode,
            norm_cfg=backbone.norm_cfg,
            with_cp=backbone.with_cp) for rate in drop_path_rates
    ])


@MODELS.register_module()
class GFNet(IsotropicBackbone):
    """Isotropic GFNet (``ti xs s b``), for any input size.

    A 16x16 patch embedding with a learned position embedding, GFNet blocks
    on the stride-16 map and a final norm (see :class:`IsotropicBackbone`;
    chain :class:`~mmspectral.models.necks.SimpleFPN` for dense heads). The
    image is zero-padded at the bottom/right to a multiple of the patch
    size; the filters and the position embedding are resized to the grid
    they meet. The pyramid archs (``h-*``) are :class:`GFNetH`.

    Args:
        arch (str | dict): ``ti``, ``xs``, ``s`` or ``b``, or a dict with
            ``embed_dims`` and ``depths`` (ints), ``mlp_ratio`` and optionally
            ``patch_size`` (16). Defaults to ``'ti'``.
        **kwargs: The arguments every backbone shares, see
            :class:`SpectralBackbone` (``out_indices`` defaults to -1, the
            normed last block).
    """
    arch_zoo = {
        **dict.fromkeys(['ti', 'tiny'], {
            'embed_dims': 256, 'depths': 12, 'mlp_ratio': 4}),
        **dict.fromkeys(['xs', 'extra-small'], {
            'embed_dims': 384, 'depths': 12, 'mlp_ratio': 4}),
        **dict.fromkeys(['s', 'small'], {
            'embed_dims': 384, 'depths': 19, 'mlp_ratio': 4}),
        **dict.fromkeys(['b', 'base'], {
            'embed_dims': 512, 'depths': 19, 'mlp_ratio': 4}),
    }  # yapf: disable
    essential_keys = ('embed_dims', 'depths', 'mlp_ratio')
    optional_keys = ('patch_size', )

    def __init__(self, arch: Union[str, dict] = 'ti', **kwargs):
        super().__init__(arch, **kwargs)
        depth = self.arch_settings['depths']
        self.blocks = _make_blocks(self, self.arch_settings['embed_dims'],
                                   self.native_grid,
                                   self.stage_drop_path_rates([depth])[0])


@MODELS.register_module()
class GFNetH(SpectralBackbone):
    """Pyramid GFNet (``h-ti h-s h-b``, GFNet-H in the paper), for any input
    size.

    A 4x4 stride-4 patch embedding with a learned position embedding, and
    four stages of GFNet blocks with layer scale, 2x2 stride-2 convolutions
    between them; strides 4, 8, 16 and 32, each output through its own norm.
    The image, and each stage's map before a downsampling, is zero-padded at
    the bottom/right to the stride, so stage ``i`` has size
    ``ceil(H / 2**(i+2))``; each filter and the position embedding are
    resized to the map they meet.

    Args:
        arch (str | dict): ``h-ti``, ``h-s`` or ``h-b``, or a dict with
            ``embed_dims``, ``depths`` (four each) and ``mlp_ratio``, and
            optionally ``layer_scale_init_value`` (0, the default, builds no
            layer scale) and ``patch_size`` (4). Defaults to ``'h-ti'``.
        **kwargs: The arguments every backbone shares, see
            :class:`SpectralBackbone`.
    """
    arch_zoo = {
        'h-ti': {'embed_dims': [64, 128, 256, 512], 'depths': [3, 3, 10, 3],
                 'mlp_ratio': 4, 'layer_scale_init_value': 1e-3},
        'h-s': {'embed_dims': [96, 192, 384, 768], 'depths': [3, 3, 10, 3],
                'mlp_ratio': 4, 'layer_scale_init_value': 1e-5},
        'h-b': {'embed_dims': [96, 192, 384, 768], 'depths': [3, 3, 27, 3],
                'mlp_ratio': 4, 'layer_scale_init_value': 1e-6},
    }  # yapf: disable
    essential_keys = ('embed_dims', 'depths', 'mlp_ratio')
    optional_keys = ('layer_scale_init_value', 'patch_size')

    def __init__(self, arch: Union[str, dict] = 'h-ti', **kwargs):
        super().__init__(arch, **kwargs)
        dims = self.embed_dims
        self.build_patch_embed(dims[0],
                               self.arch_settings.get('patch_size', 4))
        grid = self.pretrain_img_size // self.patch_size
        self.downsamples = nn.ModuleList(
            nn.Conv2d(dims[i], dims[i + 1], 2, 2) for i in range(3))
        self.stages = nn.ModuleList(
            _make_blocks(self, dims[i], grid // 2**i, rates,
                         self.arch_settings.get('layer_scale_init_value', 0.))
            for i, rates in enumerate(
                self.stage_drop_path_rates(self.arch_settings['depths'])))
        self.add_output_norms()

    def stage_parts(self, index: int) -> list:
        if index == 0:
            return [self.patch_embed, self.pos_embed]
        parts = [self.stages[index - 1]]
        if index > 1:
            parts.insert(0, self.downsamples[index - 2])
        return parts

    def forward(self, x: Tensor) -> tuple:
        x, regions = self.embed(*self.input_regions(x))
        outs = []
        for i, stage in enumerate(self.stages):
            if i > 0:
                x = zero_padding(x, regions, channels_last=True)
                x = pad_to_multiple(x.permute(0, 3, 1, 2), 2)
                x = self.downsamples[i - 1](x).permute(0, 2, 3, 1)
                if regions is not None:
                    regions = regions.at(2, x.shape[1:3])
            x = run_blocks(stage, x, regions)
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(x)
                out = zero_padding(out, regions, channels_last=True)
                outs.append(out.permute(0, 3, 1, 2).contiguous())
        return tuple(outs)
