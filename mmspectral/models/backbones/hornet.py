"""HorNet: recursive gated convolutions (gnConv), with depthwise 7x7 or
global-local filters.

Rao et al., NeurIPS 2022, https://arxiv.org/abs/2207.14284.
Reproduces the behaviour and checkpoints of
https://github.com/raoyongming/HorNet.
"""
from typing import Sequence, Union

import numpy as np
import torch
import torch.nn as nn
from mmcv.cnn.bricks import DropPath
from mmengine.model.weight_init import trunc_normal_
from torch import Tensor

from mmspectral.registry import MODELS
from ..layers import (CheckpointedBlock, GlobalFilter, LayerNorm2d, LayerScale,
                      pad_to_multiple)
from .base import SpectralBackbone, normalize_out_indices


class GlobalLocalFilter(nn.Module):
    """HorNet's GF layer: half the channels through a 3x3 depthwise conv, the
    other half through a global filter, interleaved, between two norms.

    Args:
        channels (int): Channels (even).
        spatial_size (int): Native size of the global filter (14 at 224x224
            for stage 3, 7 for stage 4; 24 and 12 at 384).
        resize_mode (str): Filter resize mode; ``'bilinear'`` is the official
            dense-prediction behaviour. Defaults to ``'bilinear'``.
    """

    def __init__(self, channels: int, spatial_size: int,
                 resize_mode: str = 'bilinear'):
        super().__init__()
        half = channels // 2
        self.pre_norm = LayerNorm2d(channels, eps=1e-6)
        self.dw = nn.Conv2d(half, half, 3, padding=1, bias=False, groups=half)
        self.filter = GlobalFilter(
            half, spatial_size, resize_mode, channels_last=False)
        self.post_norm = LayerNorm2d(channels, eps=1e-6)

    def forward(self, x: Tensor) -> Tensor:
        x1, x2 = self.pre_norm(x).chunk(2, dim=1)
        # interleave: output channel 2k is x1[k], 2k+1 is x2[k]
        x = torch.stack([self.dw(x1), self.filter(x2)], dim=2).flatten(1, 2)
        return self.post_norm(x)


class GnConv(nn.Module):
    """Recursive gated convolution of order ``order``.

    Args:
        channels (int): Channels.
        order (int): Interaction order; the gates have
            ``channels / 2**(order-1) .. channels`` channels.
        global_filter_size (int, optional): If given, the depthwise mixing is
            a :class:`GlobalLocalFilter` with this native size, else a 7x7
            depthwise conv with bias.
        scale (float): Scale of the depthwise output. Defaults to 1/3.
        resize_mode (str): Filter resize mode. Defaults to ``'bilinear'``.
    """

    def __init__(self,
                 channels: int,
                 order: int,
                 global_filter_size: int = None,
                 scale: float = 1 / 3,
                 resize_mode: str = 'bilinear'):
        super().__init__()
        self.dims = [channels // 2**i for i in range(order)][::-1]
        self.scale = scale
        self.proj_in = nn.Conv2d(channels, 2 * channels, 1)
        total = sum(self.dims)
        if global_filter_size is None:
            self.dwconv = nn.Conv2d(total, total, 7, padding=3, groups=total)
        else:
            self.dwconv = GlobalLocalFilter(total, global_filter_size,
                                            resize_mode)
        self.pws = nn.ModuleList(
            nn.Conv2d(self.dims[i], self.dims[i + 1], 1)
            for i in range(order - 1))
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        gate, rest = self.proj_in(x).split([self.dims[0], sum(self.dims)], 1)
        gates = (self.dwconv(rest) * self.scale).split(self.dims, dim=1)
        x = gate * gates[0]
        for pw, g in zip(self.pws, gates[1:]):
            x = pw(x) * g
        return self.proj_out(x)


class HorNetBlock(CheckpointedBlock):
    """``x + drop_path(gamma1 * gnconv(norm1(x)))``, then an MLP residual
    in channels-last layout, on ``(B, C, H, W)`` maps."""

    def __init__(self,
                 channels: int,
                 order: int,
                 global_filter_size: int = None,
                 scale: float = 1 / 3,
                 resize_mode: str = 'bilinear',
                 layer_scale_init_value: float = 1e-6,
                 drop_path_rate: float = 0.,
                 with_cp: bool = False):
        super().__init__()
        self.with_cp = with_cp
        self.norm1 = LayerNorm2d(channels, eps=1e-6)
        self.gnconv = GnConv(channels, order, global_filter_size, scale,
                             resize_mode)
        self.ls1 = LayerScale(
            channels, layer_scale_init_value, channels_last=False)
        self.norm2 = nn.LayerNorm(channels, eps=1e-6)
        self.pwconv1 = nn.Linear(channels, 4 * channels)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * channels, channels)
        self.ls2 = LayerScale(channels, layer_scale_init_value)
        self.drop_path = DropPath(
            drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def _forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.ls1(self.gnconv(self.norm1(x))))
        y = self.pwconv2(self.act(self.pwconv1(self.norm2(
            x.permute(0, 2, 3, 1)))))
        return x + self.drop_path(self.ls2(y).permute(0, 3, 1, 2))


@MODELS.register_module()
class HorNet(SpectralBackbone):
    """HorNet backbone (7x7 or GF), for any input size.

    A 4x4 stride-4 stem and 2x2 stride-2 downsampling layers (each with a
    channels-first LayerNorm), four stages of gnConv blocks of orders
    ``2, 3, 4, 5`` with scale 1/3 and layer scale 1e-6, as in the official
    code (mmpretrain initialises its layer scale to 1e-5). The GF archs use a
    :class:`GlobalLocalFilter` in stages 3 and 4, built on the shared
    spectral core; their filters are stored for ``pretrain_img_size``
    (``(14, 8), (7, 4)`` at 224; ``(24, 13), (12, 7)`` at 384, the size the
    official dense-prediction configs use) and resized to every input with
    ``resize_mode``. Images are zero-padded to the stride, so stage ``i``
    has size ``ceil(H / 2**(i+2))``.

    Args:
        arch (str | dict): ``t s b l`` (7x7) or ``t-gf s-gf b-gf l-gf``, or a
            dict with ``base_dim``, ``depths``, ``orders`` (four each) and
            ``global_filter_stages`` (indices of the GF stages). Defaults to
            ``'t-gf'``.
        in_channels (int): Input channels. Defaults to 3.
        pretrain_img_size (int): Image size the filters are stored for.
            Defaults to 224.
        out_indices (Sequence[int]): Stages to return. Defaults to
            ``(0, 1, 2, 3)``.
        frozen_stages (int): See :class:`SpectralBackbone`. Defaults to -1.
        norm_eval (bool): See :class:`SpectralBackbone`. Defaults to False.
        with_cp (bool): Gradient checkpointing per block. Defaults to False.
        drop_path_rate (float): Stochastic depth, linear over the blocks.
            Defaults to 0.
        scale (float): gnConv scale ``s``. Defaults to 1/3.
        layer_scale_init_value (float): Defaults to 1e-6 (official).
        resize_mode (str): How filters adapt to other sizes: ``'bilinear'``
            (official, reproduces the published dense results) or
            ``'frequency'``. Defaults to ``'bilinear'``.
        gap_before_final_norm (bool): Output ``norm(mean(x))`` vectors, as the
            official classifier does, instead of normed maps. Defaults to
            False (dense prediction).
        init_cfg (dict, optional): See :class:`SpectralBackbone`.
    """
    arch_zoo = {
        **{name: {'base_dim': dim, 'depths': [2, 3, 18, 2],
                  'orders': [2, 3, 4, 5], 'global_filter_stages': ()}
           for name, dim in (('t', 64), ('s', 96), ('b', 128), ('l', 192))},
        **{f'{name}-gf': {'base_dim': dim, 'depths': [2, 3, 18, 2],
                          'orders': [2, 3, 4, 5],
                          'global_filter_stages': (2, 3)}
           for name, dim in (('t', 64), ('s', 96), ('b', 128), ('l', 192))},
    }  # yapf: disable
    essential_keys = ('base_dim', 'depths', 'orders', 'global_filter_stages')

    def __init__(self,
                 arch: Union[str, dict] = 't-gf',
                 in_channels: int = 3,
                 pretrain_img_size: int = 224,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 drop_path_rate: float = 0.,
                 scale: float = 1 / 3,
                 layer_scale_init_value: float = 1e-6,
                 resize_mode: str = 'bilinear',
                 gap_before_final_norm: bool = False,
                 init_cfg=None):
        super().__init__(frozen_stages, norm_eval, init_cfg)
        self.arch_settings = self.check_arch(arch)
        self.arch_name = arch
        self.in_channels = in_channels
        self.out_indices = normalize_out_indices(out_indices, 4, 'HorNet')
        self.gap_before_final_norm = gap_before_final_norm
        base = self.arch_settings['base_dim']
        dims = [base, 2 * base, 4 * base, 8 * base]
        self.embed_dims = dims
        self.downsample_layers = nn.ModuleList([
            nn.Sequential(
                nn.Conv2d(in_channels, dims[0], 4, 4),
                LayerNorm2d(dims[0], eps=1e-6))
        ] + [
            nn.Sequential(
                LayerNorm2d(dims[i], eps=1e-6),
                nn.Conv2d(dims[i], dims[i + 1], 2, 2)) for i in range(3)
        ])
        depths = self.arch_settings['depths']
        rates = np.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        for i, depth in enumerate(depths):
            size = pretrain_img_size // 2**(i + 2)
            gf = size if i in self.arch_settings[
                'global_filter_stages'] else None
            start = sum(depths[:i])
            self.stages.append(
                nn.Sequential(*[
                    HorNetBlock(
                        dims[i],
                        self.arch_settings['orders'][i],
                        global_filter_size=gf,
                        scale=scale,
                        resize_mode=resize_mode,
                        layer_scale_init_value=layer_scale_init_value,
                        drop_path_rate=rates[start + j],
                        with_cp=with_cp) for j in range(depth)
                ]))
        for i in self.out_indices:
            self.add_module(f'norm{i}', LayerNorm2d(dims[i], eps=1e-6))
        self.out_channels = [dims[i] for i in self.out_indices]
        self.apply(self._init_weights)
        self._freeze_stages()

    @staticmethod
    def _init_weights(module: nn.Module):
        # the official initialisation
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            trunc_normal_(module.weight, std=.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def stage_parts(self, index: int) -> list:
        if index == 0:
            return [self.downsample_layers[0]]
        parts = [self.stages[index - 1]]
        if index > 1:
            parts.insert(0, self.downsample_layers[index - 1])
        return parts

    def forward(self, x: Tensor) -> tuple:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'HorNet expects a (B, {self.in_channels}, H, W) image batch,'
                f' got shape {tuple(x.shape)}')
        outs = []
        for i, (down, stage) in enumerate(
                zip(self.downsample_layers, self.stages)):
            x = stage(down(pad_to_multiple(x, 4 if i == 0 else 2)))
            if i not in self.out_indices:
                continue
            norm = getattr(self, f'norm{i}')
            if self.gap_before_final_norm:
                outs.append(norm(x.mean((2, 3), keepdim=True)).flatten(1))
            else:
                outs.append(norm(x).contiguous())
        return tuple(outs)
