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
from .base import SpectralBackbone, deit_init, normalize_out_indices


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


@MODELS.register_module()
class GFNet(SpectralBackbone):
    """GFNet backbone, isotropic or pyramid, for any input size.

    The pyramid archs (``h-*``) give four stages of strides 4, 8, 16 and 32.
    The isotropic archs have one stride-16 stage; a
    :class:`SimpleFeaturePyramid` turns its normed output into the same four
    strides, so FPN necks work unchanged. Inputs of any size are accepted: the
    image (and each stage's map before downsampling) is zero-padded at the
    bottom/right to the stride, so stage ``i`` of a pyramid arch has size
    ``ceil(H / 2**(i+2))``; each global filter and the position embedding are
    resized to the map they meet (filters in ``resize_mode``, the position
    embedding bicubically).

    Args:
        arch (str | dict): One of ``arch_zoo`` (``ti xs s b`` isotropic,
            ``h-ti h-s h-b`` pyramid), or a dict with keys ``embed_dims`` and
            ``depths`` (an int each for isotropic, four each for a pyramid),
            ``mlp_ratio`` and optionally ``layer_scale_init_value`` and
            ``patch_size``. Defaults to ``'h-ti'``.
        in_channels (int): Input channels. Defaults to 3.
        pretrain_img_size (int): Image size the filters and the position
            embedding are stored for (224 for the published ImageNet models,
            384 for the fine-tuned ones). Defaults to 224.
        out_indices (Sequence[int]): Output levels, from 0..3 (strides 4, 8,
            16, 32). Defaults to ``(0, 1, 2, 3)``.
        frozen_stages (int): See :class:`SpectralBackbone`. Defaults to -1.
        norm_eval (bool): See :class:`SpectralBackbone`. Defaults to False.
        with_cp (bool): Gradient checkpointing in every block. Defaults to
            False.
        drop_rate (float): Dropout after the position embedding and in the
            MLPs. Defaults to 0.
        drop_path_rate (float): Stochastic depth, increasing linearly over the
            blocks up to this value. Defaults to 0.
        resize_mode (str): How filters adapt to other sizes, ``'frequency'``
            or ``'bilinear'`` (see :class:`GlobalFilter`). Defaults to
            ``'frequency'``.
        norm_cfg (dict): Norm config. Defaults to ``dict(type='LN',
            eps=1e-6)``.
        pyramid_norm_cfg (dict): Norm inside the simple feature pyramid of the
            isotropic archs. Defaults to ``dict(type='LN2d', eps=1e-6)``.
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
                 pyramid_norm_cfg: dict = dict(type='LN2d', eps=1e-6),
                 resize_cache_size: int = 2,
                 init_cfg=None):
        super().__init__(frozen_stages, norm_eval, init_cfg,
                         resize_cache_size)
        self.arch_settings = self.check_arch(arch)
        self.arch_name = arch
        embed_dims = self.arch_settings['embed_dims']
        self.isotropic = isinstance(embed_dims, int)
        self.out_indices = normalize_out_indices(out_indices, 4, 'GFNet')
        patch_size = self.arch_settings.get('patch_size',
                                            16 if self.isotropic else 4)
        self.build_patch_embed(in_channels,
                               embed_dims if self.isotropic else embed_dims[0],
                               patch_size, pretrain_img_size, drop_rate)
        grid = pretrain_img_size // patch_size
        if self.isotropic:
            self._build_isotropic(grid, drop_rate, drop_path_rate,
                                  resize_mode, norm_cfg, pyramid_norm_cfg,
                                  with_cp)
        else:
            self._build_pyramid(grid, drop_rate, drop_path_rate, resize_mode,
                                norm_cfg, with_cp)
        self.apply(deit_init)
        self.finish_build()

    def _make_blocks(self, embed_dims: int, depth: int, spatial_size: int,
                     drop_path_rates: List[float], **kwargs) -> nn.Sequential:
        return nn.Sequential(*[
            GFNetBlock(
                embed_dims,
                spatial_size,
                mlp_ratio=self.arch_settings['mlp_ratio'],
                drop_path_rate=drop_path_rates[i],
                layer_scale_init_value=self.arch_settings.get(
                    'layer_scale_init_value', 0.),
                **kwargs) for i in range(depth)
        ])

    def _build_isotropic(self, grid, drop_rate, drop_path_rate, resize_mode,
                         norm_cfg, pyramid_norm_cfg, with_cp):
        dims, depth = (self.arch_settings['embed_dims'],
                       self.arch_settings['depths'])
        if not isinstance(depth, int):
            raise ValueError('GFNet isotropic arch: depths must be an int, '
                             f'got {depth!r}')
        self.embed_dims = [dims]
        blocks = self._make_blocks(
            dims, depth, grid,
            np.linspace(0, drop_path_rate, depth).tolist(),
            drop_rate=drop_rate, resize_mode=resize_mode, norm_cfg=norm_cfg,
            with_cp=with_cp)
        self.build_isotropic_neck(blocks, dims, norm_cfg, pyramid_norm_cfg)

    def _build_pyramid(self, grid, drop_rate, drop_path_rate, resize_mode,
                       norm_cfg, with_cp):
        dims, depths = (self.arch_settings['embed_dims'],
                        self.arch_settings['depths'])
        if len(dims) != 4 or isinstance(depths, int) or len(depths) != 4:
            raise ValueError('GFNet pyramid arch needs four embed_dims and '
                             f'four depths, got {dims!r} and {depths!r}')
        self.embed_dims = list(dims)
        self.downsamples = nn.ModuleList(
            nn.Conv2d(dims[i], dims[i + 1], 2, 2) for i in range(3))
        rates = np.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        for i, depth in enumerate(depths):
            start = sum(depths[:i])
            self.stages.append(
                self._make_blocks(
                    dims[i], depth, grid // 2**i, rates[start:start + depth],
                    drop_rate=drop_rate, resize_mode=resize_mode,
                    norm_cfg=norm_cfg, with_cp=with_cp))
        for i in self.out_indices:
            self.add_module(f'norm{i}', build_norm_layer(norm_cfg, dims[i])[1])
        self.out_channels = [dims[i] for i in self.out_indices]

    def stage_parts(self, index: int) -> list:
        if self.isotropic:
            return self.isotropic_stage_parts(index)
        if index == 0:
            return [self.patch_embed, self.pos_embed]
        parts = [self.stages[index - 1]]
        if index > 1:
            parts.insert(0, self.downsamples[index - 2])
        return parts

    def forward(self, x: Tensor) -> tuple:
        if self.isotropic:
            return self.forward_isotropic(x)
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
