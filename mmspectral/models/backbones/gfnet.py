"""GFNet: Global Filter Networks for Image Classification.

Rao et al., NeurIPS 2021 / TPAMI 2023, https://arxiv.org/abs/2107.00645.
Reproduces the behaviour and checkpoints of
https://github.com/raoyongming/GFNet.
"""
from typing import List, Sequence, Union

import numpy as np
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks import DropPath
from torch import Tensor

from mmspectral.registry import MODELS
from ..layers import (CheckpointedBlock, GlobalFilter, LayerScale, Mlp,
                      pad_to_multiple)
from .base import (IsotropicBackbone, SpectralBackbone, deit_init,
                   normalize_out_indices)


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

    def _forward(self, x: Tensor) -> Tensor:
        y = self.mlp(self.norm2(self.filter(self.norm1(x))))
        return x + self.drop_path(self.layer_scale(y))


def _make_blocks(embed_dims: int, depth: int, spatial_size: int,
                 drop_path_rates: List[float], mlp_ratio: float,
                 layer_scale_init_value: float, **kwargs) -> nn.Sequential:
    return nn.Sequential(*[
        GFNetBlock(
            embed_dims,
            spatial_size,
            mlp_ratio=mlp_ratio,
            drop_path_rate=drop_path_rates[i],
            layer_scale_init_value=layer_scale_init_value,
            **kwargs) for i in range(depth)
    ])


@MODELS.register_module()
class GFNet(IsotropicBackbone):
    """Isotropic GFNet (``ti xs s b``), for any input size.

    A 16x16 patch embedding with a learned position embedding, GFNet blocks
    on the stride-16 map, a final norm, and the shared simple feature pyramid
    that turns the normed map into strides 4, 8, 16 and 32 for dense heads.
    The image is zero-padded at the bottom/right to a multiple of the patch
    size; the filters and the position embedding are resized to the grid
    they meet. The pyramid archs (``h-*``) are :class:`GFNetH`;
    ``GFNet(arch='h-*')`` builds one, so configs written before the two were
    split keep working.

    Args:
        arch (str | dict): ``ti``, ``xs``, ``s`` or ``b``, or a dict with
            ``embed_dims`` and ``depths`` (ints), ``mlp_ratio`` and optionally
            ``patch_size`` (16). Defaults to ``'ti'``.
        in_channels (int): Input channels. Defaults to 3.
        pretrain_img_size (int): Image size the filters and the position
            embedding are stored for (224 for the published ImageNet models,
            384 for the fine-tuned ones). Defaults to 224.
        out_indices (Sequence[int]): Pyramid levels, from 0..3 (strides 4,
            8, 16, 32). Defaults to ``(0, 1, 2, 3)``.
        frozen_stages (int): See :class:`SpectralBackbone`. Defaults to -1.
        norm_eval (bool): See :class:`SpectralBackbone`. Defaults to False.
        with_cp (bool): See :class:`SpectralBackbone`. Defaults to False.
        drop_rate (float): See :class:`SpectralBackbone`. Defaults to 0.
        drop_path_rate (float): See :class:`SpectralBackbone`. Defaults
            to 0.
        resize_mode (str): See :class:`SpectralBackbone`. Defaults to
            ``'frequency'``.
        norm_cfg (dict): Norm config. Defaults to ``dict(type='LN',
            eps=1e-6)``.
        pyramid_norm_cfg (dict): Norm inside the simple feature pyramid.
            Defaults to ``dict(type='LN2d', eps=1e-6)``.
        resize_cache_size (int): See :class:`SpectralBackbone`. Defaults
            to 2.
        init_cfg (dict, optional): See :class:`SpectralBackbone`. Defaults to
            None.
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
    hierarchical_class = 'GFNetH'

    def __init__(self,
                 arch: Union[str, dict] = 'ti',
                 in_channels: int = 3,
                 pretrain_img_size: int = 224,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 resize_mode: str = 'frequency',
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 pyramid_norm_cfg: dict = dict(type='LN2d', eps=1e-6),
                 resize_cache_size: int = 2,
                 init_cfg=None):
        super().__init__(frozen_stages, norm_eval, init_cfg,
                         resize_cache_size)
        self.arch_settings = self.check_arch(arch)
        self.arch_name = arch
        dims, depth = (self.arch_settings['embed_dims'],
                       self.arch_settings['depths'])
        if not isinstance(dims, int) or not isinstance(depth, int):
            raise ValueError('GFNet arch: embed_dims and depths must be ints '
                             f'(the pyramid archs are GFNetH), got {dims!r} '
                             f'and {depth!r}')
        self.out_indices = normalize_out_indices(out_indices, 4, 'GFNet')
        patch_size = self.arch_settings.get('patch_size', 16)
        self.build_patch_embed(in_channels, dims, patch_size,
                               pretrain_img_size, drop_rate)
        blocks = _make_blocks(
            dims, depth, pretrain_img_size // patch_size,
            np.linspace(0, drop_path_rate, depth).tolist(),
            self.arch_settings['mlp_ratio'], 0., drop_rate=drop_rate,
            resize_mode=resize_mode, norm_cfg=norm_cfg, with_cp=with_cp)
        self.build_isotropic_layers(blocks, dims, norm_cfg, pyramid_norm_cfg)
        self.apply(deit_init)
        self.finish_build()


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
        in_channels (int): Input channels. Defaults to 3.
        pretrain_img_size (int): Image size the filters and the position
            embedding are stored for. Defaults to 224.
        out_indices (Sequence[int]): Stages to return, from 0..3 (strides 4,
            8, 16, 32). Defaults to ``(0, 1, 2, 3)``.
        frozen_stages (int): See :class:`SpectralBackbone`. Defaults to -1.
        norm_eval (bool): See :class:`SpectralBackbone`. Defaults to False.
        with_cp (bool): See :class:`SpectralBackbone`. Defaults to False.
        drop_rate (float): See :class:`SpectralBackbone`. Defaults to 0.
        drop_path_rate (float): See :class:`SpectralBackbone`. Defaults
            to 0.
        resize_mode (str): See :class:`SpectralBackbone`. Defaults to
            ``'frequency'``.
        norm_cfg (dict): Norm config. Defaults to ``dict(type='LN',
            eps=1e-6)``.
        resize_cache_size (int): See :class:`SpectralBackbone`. Defaults
            to 2.
        init_cfg (dict, optional): See :class:`SpectralBackbone`. Defaults to
            None.
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

    def __init__(self,
                 arch: Union[str, dict] = 'h-ti',
                 in_channels: int = 3,
                 pretrain_img_size: int = 224,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 resize_mode: str = 'frequency',
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 resize_cache_size: int = 2,
                 init_cfg=None):
        super().__init__(frozen_stages, norm_eval, init_cfg,
                         resize_cache_size)
        self.arch_settings = self.check_arch(arch)
        self.arch_name = arch
        dims, depths = (self.arch_settings['embed_dims'],
                        self.arch_settings['depths'])
        if isinstance(dims, int) or isinstance(depths, int) or len(
                dims) != 4 or len(depths) != 4:
            raise ValueError('GFNetH arch needs four embed_dims and four '
                             f'depths, got {dims!r} and {depths!r}')
        self.embed_dims = list(dims)
        self.out_indices = normalize_out_indices(out_indices, 4, 'GFNetH')
        patch_size = self.arch_settings.get('patch_size', 4)
        self.build_patch_embed(in_channels, dims[0], patch_size,
                               pretrain_img_size, drop_rate)
        grid = pretrain_img_size // patch_size
        self.downsamples = nn.ModuleList(
            nn.Conv2d(dims[i], dims[i + 1], 2, 2) for i in range(3))
        rates = np.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        for i, depth in enumerate(depths):
            start = sum(depths[:i])
            self.stages.append(
                _make_blocks(
                    dims[i], depth, grid // 2**i, rates[start:start + depth],
                    self.arch_settings['mlp_ratio'],
                    self.arch_settings.get('layer_scale_init_value', 0.),
                    drop_rate=drop_rate, resize_mode=resize_mode,
                    norm_cfg=norm_cfg, with_cp=with_cp))
        for i in self.out_indices:
            self.add_module(f'norm{i}', build_norm_layer(norm_cfg, dims[i])[1])
        self.out_channels = [dims[i] for i in self.out_indices]
        self.apply(deit_init)
        self.finish_build()

    def stage_parts(self, index: int) -> list:
        if index == 0:
            return [self.patch_embed, self.pos_embed]
        parts = [self.stages[index - 1]]
        if index > 1:
            parts.insert(0, self.downsamples[index - 2])
        return parts

    def forward(self, x: Tensor) -> tuple:
        x = self.embed(x)
        outs = []
        for i, stage in enumerate(self.stages):
            if i > 0:
                x = pad_to_multiple(x.permute(0, 3, 1, 2), 2)
                x = self.downsamples[i - 1](x).permute(0, 2, 3, 1)
            x = stage(x)
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(x)
                outs.append(out.permute(0, 3, 1, 2).contiguous())
        return tuple(outs)
