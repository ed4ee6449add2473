"""HorNet: recursive gated convolutions (gnConv), with depthwise 7x7 or
global-local filters.

Rao et al., NeurIPS 2022, https://arxiv.org/abs/2207.14284.
Reproduces the behaviour and checkpoints of
https://github.com/raoyongming/HorNet.
"""
from typing import Optional, Union

import torch
import torch.nn as nn
from mmcv.cnn.bricks import DropPath, LayerScale
from torch import Tensor

from mmspectral.registry import MODELS
from ..layers import (CheckpointedBlock, GlobalFilter, build_norm2d,
                      pad_to_multiple)
from ..layers.utils import guess_native_size
from .base import (SpectralBackbone, ValidRegions, filter_sizes, run_blocks,
                   run_padded, zero_padding)


class GlobalLocalFilter(nn.Module):
    """HorNet's GF layer: half the channels through a 3x3 depthwise conv, the
    other half through a global filter, interleaved, between two norms.

    Its filter is saved and loaded as ``complex_weight`` of shape
    ``(C/2, h, w, 2)``, the key and layout of mmpretrain's and the official
    HorNet, although the spectral core (``self.filter``) holds it as
    ``(h, w, C/2, 2)``.

    Args:
        channels (int): Channels (even).
        spatial_size (int | tuple[int, int]): Native size of the global
            filter (14 at 224x224 for stage 3, 7 for stage 4; 24 and 12 at
            384).
        resize_mode (str): Filter resize mode; ``'bilinear'`` is the official
            dense-prediction behaviour. Defaults to ``'bilinear'``.
        norm_cfg (dict): The two norms. Defaults to ``dict(type='LN2d',
            eps=1e-6)``.
    """

    def __init__(self,
                 channels: int,
                 spatial_size: int,
                 resize_mode: str = 'bilinear',
                 norm_cfg: dict = dict(type='LN2d', eps=1e-6)):
        super().__init__()
        half = channels // 2
        self.pre_norm = build_norm2d(norm_cfg, channels)
        self.dw = nn.Conv2d(half, half, 3, padding=1, bias=False, groups=half)
        self.filter = GlobalFilter(
            half, spatial_size, resize_mode, channels_last=False)
        self.post_norm = build_norm2d(norm_cfg, channels)
        self.register_state_dict_post_hook(_save_channels_first_filter)
        self.register_load_state_dict_pre_hook(_load_channels_first_filter)

    def forward(self, x: Tensor,
                regions: Optional[ValidRegions] = None) -> Tensor:
        x1, x2 = self.pre_norm(x).chunk(2, dim=1)
        x1 = self.dw(zero_padding(x1, regions))
        x2 = self.filter(x2, valid_sizes=filter_sizes(regions))
        # interleave: output channel 2k is x1[k], 2k+1 is x2[k]
        x = torch.stack([x1, x2], dim=2).flatten(1, 2)
        return self.post_norm(x)


def _save_channels_first_filter(module, state_dict, prefix, local_metadata):
    weight = state_dict.pop(prefix + 'filter.complex_weight')
    state_dict[prefix + 'complex_weight'] = weight.permute(2, 0, 1, 3)


def _load_channels_first_filter(module, state_dict, prefix, *args):
    weight = state_dict.pop(prefix + 'complex_weight', None)
    if weight is not None:
        state_dict[prefix + 'filter.complex_weight'] = weight.permute(
            1, 2, 0, 3)


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
        norm_cfg (dict): The norms of the global-local filter. Defaults to
            ``dict(type='LN2d', eps=1e-6)``.
    """

    def __init__(self,
                 channels: int,
                 order: int,
                 global_filter_size: int = None,
                 scale: float = 1 / 3,
                 resize_mode: str = 'bilinear',
                 norm_cfg: dict = dict(type='LN2d', eps=1e-6)):
        super().__init__()
        self.dims = [channels // 2**i for i in range(order)][::-1]
        self.scale = scale
        self.proj_in = nn.Conv2d(channels, 2 * channels, 1)
        total = sum(self.dims)
        if global_filter_size is None:
            self.dwconv = nn.Conv2d(total, total, 7, padding=3, groups=total)
        else:
            self.dwconv = GlobalLocalFilter(total, global_filter_size,
                                            resize_mode, norm_cfg)
        self.projs = nn.ModuleList(
            nn.Conv2d(self.dims[i], self.dims[i + 1], 1)
            for i in range(order - 1))
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor,
                regions: Optional[ValidRegions] = None) -> Tensor:
        gate, rest = self.proj_in(x).split([self.dims[0], sum(self.dims)], 1)
        if isinstance(self.dwconv, GlobalLocalFilter):
            rest = self.dwconv(rest, regions)
        else:
            rest = self.dwconv(zero_padding(rest, regions))
        gates = (rest * self.scale).split(self.dims, dim=1)
        x = gate * gates[0]
        for pw, g in zip(self.projs, gates[1:]):
            x = pw(x) * g
        return self.proj_out(x)


class HorNetBlock(CheckpointedBlock):
    """``x + drop_path(gamma1 * gnconv(norm1(x)))``, then an MLP residual
    ``x + drop_path(gamma2 * mlp(norm2(x)))`` computed channels-last, on
    ``(B, C, H, W)`` maps.

    Args:
        channels (int): Channels.
        order (int): gnConv order.
        global_filter_size (int | tuple[int, int], optional): Native size of
            a global-local filter; None for a 7x7 depthwise conv.
        scale (float): gnConv scale. Defaults to 1/3.
        resize_mode (str): Filter resize mode. Defaults to ``'bilinear'``.
        mlp_ratio (float): Hidden/input channels of the MLP. Defaults to 4.
        layer_scale_init_value (float): Initial layer scale; 0 builds none.
            Defaults to 1e-6.
        drop_rate (float): Dropout in the MLP. Defaults to 0.
        drop_path_rate (float): Stochastic depth. Defaults to 0.
        norm_cfg (dict): Every norm of the block (channels-first maps).
            Defaults to ``dict(type='LN2d', eps=1e-6)``.
        with_cp (bool): Gradient checkpointing. Defaults to False.
    """

    def __init__(self,
                 channels: int,
                 order: int,
                 global_filter_size: int = None,
                 scale: float = 1 / 3,
                 resize_mode: str = 'bilinear',
                 mlp_ratio: float = 4.,
                 layer_scale_init_value: float = 1e-6,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 norm_cfg: dict = dict(type='LN2d', eps=1e-6),
                 with_cp: bool = False):
        super().__init__()
        self.with_cp = with_cp
        self.out_channels = channels
        self.norm1 = build_norm2d(norm_cfg, channels)
        self.gnconv = GnConv(channels, order, global_filter_size, scale,
                             resize_mode, norm_cfg)
        # mmcv's LayerScale stores its scale as ``weight``: mmpretrain's keys
        self.gamma1 = LayerScale(
            channels, data_format='channels_first',
            scale=layer_scale_init_value
        ) if layer_scale_init_value > 0 else nn.Identity()
        hidden = int(mlp_ratio * channels)
        self.norm2 = build_norm2d(norm_cfg, channels)
        self.pwconv1 = nn.Linear(channels, hidden)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(hidden, channels)
        self.drop = nn.Dropout(drop_rate)
        self.gamma2 = LayerScale(
            channels, scale=layer_scale_init_value
        ) if layer_scale_init_value > 0 else nn.Identity()
        self.drop_path = DropPath(
            drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def _forward(self, x: Tensor,
                 regions: Optional[ValidRegions] = None) -> Tensor:
        x = x + self.drop_path(
            self.gamma1(self.gnconv(self.norm1(x), regions)))
        y = self.drop(self.act(self.pwconv1(self.norm2(x).permute(0, 2, 3,
                                                                  1))))
        y = self.gamma2(self.drop(self.pwconv2(y)))
        return x + self.drop_path(y.permute(0, 3, 1, 2))


def _zoo_entry(base_dim: int, global_filter_stages=(), **extra) -> dict:
    return dict(base_dim=base_dim, depths=[2, 3, 18, 2],
                orders=[2, 3, 4, 5],
                global_filter_stages=global_filter_stages, **extra)


def _filter_sizes_of(arch: dict, pretrain_img_size: int) -> list:
    """The native size of each stage's global filter (None: a 7x7 stage),
    from ``global_filter_stages`` and the image size, or from mmpretrain's
    ``dw_cfg`` (``dict(type='GF', h=14, w=8)`` gives the filter's frequency
    grid)."""
    if 'dw_cfg' in arch:
        sizes = []
        for cfg in arch['dw_cfg']:
            if cfg.get('type') == 'GF':
                sizes.append(guess_native_size(cfg['h'], cfg['w']))
            elif cfg.get('type') == 'DW' and cfg.get('kernel_size', 7) == 7:
                sizes.append(None)
            else:
                raise ValueError(f'HorNet dw_cfg: {cfg!r} is neither '
                                 "dict(type='DW', kernel_size=7) nor "
                                 "dict(type='GF', h=..., w=...)")
        return sizes
    return [
        pretrain_img_size // 2**(i + 2)
        if i in arch['global_filter_stages'] else None for i in range(4)
    ]


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

    **Coming from mmpretrain's HorNet**: its configs work by changing
    ``type='HorNet'`` to ``type='mmspectral.HorNet'``. Its arch names
    (``'tiny'``, ``'tiny-gf'``, ... ``'large-gf384'``) and ``dw_cfg`` dict
    archs are accepted, and the defaults of the arguments both classes have
    are mmpretrain's (``out_indices=(3, )``,
    ``gap_before_final_norm=True``: the classification layout; dense
    configs set both). Three things differ: ``frozen_stages=k`` here
    freezes the stem and the first ``k`` stages, i.e. mmpretrain's
    ``frozen_stages=k - 1`` (the meaning every mmspectral backbone gives
    it); inputs whose size is not a multiple of 32 are zero-padded, so the
    last map is ``ceil(W / 32)`` wide where mmpretrain's is ``floor(W /
    32)``; and an unknown arch raises ValueError, not AssertionError.

    Args:
        arch (str | dict): ``t s b l`` (7x7) or ``t-gf s-gf b-gf l-gf`` (and
            their mmpretrain names ``tiny``, ``tiny-gf``, ..., with
            ``b-gf384`` / ``l-gf384`` storing filters for 384), or a dict
            with ``base_dim``, ``depths``, ``orders`` (four each) and either
            ``global_filter_stages`` (indices of the GF stages) or
            mmpretrain's ``dw_cfg``, and optionally ``mlp_ratio`` (4) and
            ``layer_scale_init_value`` (1e-6, official; mmpretrain
            initialises 1e-5). Defaults to ``'t-gf'``.
        scale (float): gnConv scale ``s``. Defaults to 1/3.
        use_layer_scale (bool): Scale each residual branch by a learned
            per-channel factor (mmpretrain's argument). Defaults to True.
        gap_before_final_norm (bool): Output ``norm(mean(x))`` vectors, as the
            official classifier does, instead of normed maps. Defaults to
            True (mmpretrain's default; dense configs set False).
        **kwargs: The arguments every backbone shares, see
            :class:`SpectralBackbone`, with HorNet's defaults:
            ``out_indices=(3, )`` (mmpretrain's), ``resize_mode='bilinear'``
            (the official dense code's resize, which the published dense
            results depend on), ``norm_cfg=dict(type='LN2d', eps=1e-6)``
            (HorNet's maps are channels-first) for every norm, and
            ``pretrain_img_size`` the arch's (384 for ``*-gf384``, else 224).
            ``frozen_stages`` has the meaning above; the official code has
            no ``drop_rate``.
    """
    arch_zoo = {
        **{name: _zoo_entry(dim) for names, dim in (
            (('t', 'tiny'), 64), (('s', 'small'), 96), (('b', 'base'), 128),
            (('l', 'large'), 192)) for name in names},
        **{f'{name}-gf': _zoo_entry(dim, (2, 3)) for names, dim in (
            (('t', 'tiny'), 64), (('s', 'small'), 96), (('b', 'base'), 128),
            (('l', 'large'), 192)) for name in names},
        **{f'{name}-gf384': _zoo_entry(dim, (2, 3), pretrain_img_size=384)
           for names, dim in ((('b', 'base'), 128), (('l', 'large'), 192))
           for name in names},
    }  # yapf: disable
    essential_keys = ('base_dim', 'depths', 'orders')
    optional_keys = ('global_filter_stages', 'dw_cfg', 'pretrain_img_size',
                     'mlp_ratio', 'layer_scale_init_value')

    @classmethod
    def check_arch(cls, arch: Union[str, dict]) -> dict:
        settings = super().check_arch(arch)
        if ('global_filter_stages' in settings) == ('dw_cfg' in settings):
            raise ValueError('HorNet dict arch: give exactly one of '
                             "'global_filter_stages' and 'dw_cfg', got "
                             f'{sorted(settings)}')
        return settings

    default_out_indices = (3, )
    default_norm_cfg = dict(type='LN2d', eps=1e-6)
    default_resize_mode = 'bilinear'
    # the official initialisation
    default_init_cfg = dict(
        type='TruncNormal', layer=['Conv2d', 'Linear'], std=.02, bias=0.)

    @classmethod
    def stage_channels(cls, settings: dict) -> list:
        return [settings['base_dim'] * 2**i for i in range(cls.num_stages)]

    def __init__(self,
                 arch: Union[str, dict] = 't-gf',
                 *,
                 scale: float = 1 / 3,
                 use_layer_scale: bool = True,
                 gap_before_final_norm: bool = True,
                 **kwargs):
        super().__init__(arch, **kwargs)
        self.gap_before_final_norm = gap_before_final_norm
        settings, dims = self.arch_settings, self.embed_dims
        self.downsample_layers = nn.ModuleList([
            nn.Sequential(
                nn.Conv2d(self.in_channels, dims[0], 4, 4),
                build_norm2d(self.norm_cfg, dims[0]))
        ] + [
            nn.Sequential(
                build_norm2d(self.norm_cfg, dims[i]),
                nn.Conv2d(dims[i], dims[i + 1], 2, 2)) for i in range(3)
        ])
        filter_sizes = _filter_sizes_of(settings, self.pretrain_img_size)
        layer_scale = settings.get('layer_scale_init_value',
                                   1e-6) if use_layer_scale else 0.
        self.stages = nn.ModuleList(
            nn.Sequential(*[
                HorNetBlock(
                    dims[i],
                    settings['orders'][i],
                    global_filter_size=filter_sizes[i],
                    scale=scale,
                    resize_mode=self.resize_mode,
                    mlp_ratio=settings.get('mlp_ratio', 4),
                    layer_scale_init_value=layer_scale,
                    drop_rate=self.drop_rate,
                    drop_path_rate=rate,
                    norm_cfg=self.norm_cfg,
                    with_cp=self.with_cp) for rate in rates
            ]) for i, rates in enumerate(
                self.stage_drop_path_rates(settings['depths'])))
        self.add_output_norms(build_norm2d)

    def stage_parts(self, index: int) -> list:
        if index == 0:
            return [self.downsample_layers[0]]
        parts = [self.stages[index - 1]]
        if index > 1:
            parts.insert(0, self.downsample_layers[index - 1])
        return parts

    def forward(self, x: Tensor) -> tuple:
        x, regions = self.input_regions(x)
        outs = []
        for i, (down, stage) in enumerate(
                zip(self.downsample_layers, self.stages)):
            x, regions = run_padded(down, pad_to_multiple(
                x, 4 if i == 0 else 2), regions)
            x = run_blocks(stage, x, regions)
            if i not in self.out_indices:
                continue
            norm = getattr(self, f'norm{i}')
            if self.gap_before_final_norm:
                pooled = x.mean((2, 3), keepdim=True) if regions is None \
                    else regions.mean(x)
                outs.append(norm(pooled).flatten(1))
            else:
                outs.append(zero_padding(norm(x), regions).contiguous())
        return tuple(outs)
