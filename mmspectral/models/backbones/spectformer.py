"""SpectFormer: spectral gating blocks first, multi-head attention after.

Patro et al., 2023, https://arxiv.org/abs/2304.06446.
Reproduces the behaviour and checkpoints of
https://github.com/badripatro/SpectFormers (vanilla and hierarchical).
"""
import re
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks import DropPath
from torch import Tensor

from mmspectral.registry import MODELS
from ..layers import (CheckpointedBlock, ClassAttention, ConvMlp, GlobalFilter,
                      Mlp, MultiheadSelfAttention)
from .base import (IsotropicBackbone, SpectralBackbone, ValidRegions,
                   filter_sizes, run_padded, zero_padding)
from .gfnet import GFNetBlock


class SpectFormerBlock(CheckpointedBlock):
    """A pre-norm block with two residuals on ``(B, H, W, C)`` maps::

        x = x + drop_path(mixer(norm1(x)))
        x = x + drop_path(ffn(norm2(x)))

    The mixer is a global filter (``filter``) or multi-head self-attention
    (``attn``); the FFN a plain MLP or PVTv2's conv FFN.

    Args:
        embed_dims (int): Channels.
        num_heads (int, optional): Attention heads; None makes the mixer a
            global filter.
        mlp_ratio (float): FFN width ratio.
        spatial_size (int): Native size of the global filter.
        conv_ffn (bool): PVTv2's FFN (hierarchical archs) instead of the
            plain MLP (vanilla archs). Defaults to False.
        fused_qkv (bool): The vanilla ``qkv`` key layout instead of the
            hierarchical ``q``/``kv`` one. Defaults to True.
        drop_rate (float): Dropout (attention and MLP). Defaults to 0.
        drop_path_rate (float): Stochastic depth. Defaults to 0.
        resize_mode (str): Filter resize mode. Defaults to ``'frequency'``.
        norm_cfg (dict): Norm config. Defaults to ``dict(type='LN',
            eps=1e-6)``.
        with_cp (bool): Gradient checkpointing. Defaults to False.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int = None,
                 mlp_ratio: float = 4.,
                 spatial_size: int = 14,
                 conv_ffn: bool = False,
                 fused_qkv: bool = True,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 resize_mode: str = 'frequency',
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 with_cp: bool = False):
        super().__init__()
        self.with_cp = with_cp
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        if num_heads is None:
            self.filter = GlobalFilter(embed_dims, spatial_size, resize_mode)
        else:
            self.attn = MultiheadSelfAttention(
                embed_dims,
                num_heads,
                fused_qkv=fused_qkv,
                attn_drop=drop_rate,
                proj_drop=drop_rate)
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        hidden = int(embed_dims * mlp_ratio)
        self.mlp = ConvMlp(embed_dims, hidden) if conv_ffn else Mlp(
            embed_dims, hidden, drop_rate=drop_rate)
        self.drop_path = DropPath(
            drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def _mix(self, x: Tensor, regions: Optional[ValidRegions]) -> Tensor:
        if hasattr(self, 'filter'):
            return self.filter(x, valid_sizes=filter_sizes(regions))
        mask = _padding_mask(x, regions)
        return self.attn(
            x.flatten(1, 2),
            key_mask=None if mask is None else mask.flatten(1)).view_as(x)

    def _forward(self, x: Tensor,
                 regions: Optional[ValidRegions] = None) -> Tensor:
        x = x + self.drop_path(self._mix(self.norm1(x), regions))
        y = self.norm2(x)
        if isinstance(self.mlp, ConvMlp):
            y = self.mlp(y, _padding_mask(x, regions))
        else:
            y = self.mlp(y)
        return x + self.drop_path(y)


def _padding_mask(x: Tensor, regions: Optional[ValidRegions]):
    """``(B, H, W)``, True inside the regions; None where no image has
    padding."""
    if filter_sizes(regions) is None:
        return None
    return regions.mask(x.device)


class ClassBlock(nn.Module):
    """The hierarchical SpectFormer's post network: a class token (the mean
    of the tokens) is prepended and updated by class attention and an MLP;
    the other tokens pass unchanged."""

    def __init__(self, embed_dims: int, num_heads: int, mlp_ratio: float,
                 norm_cfg: dict):
        super().__init__()
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.attn = ClassAttention(embed_dims, num_heads)
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio))

    def forward(self, tokens: Tensor) -> Tensor:
        x = torch.cat([tokens.mean(1, keepdim=True), tokens], dim=1)
        cls = x[:, :1] + self.attn(self.norm1(x))
        cls = cls + self.mlp(self.norm2(cls))
        return torch.cat([cls, tokens], dim=1)


class Stem(nn.Module):
    """Three conv-BN-ReLU (the first with stride 2), a stride-2 projection
    and a LayerNorm: the hierarchical SpectFormer's stride-4 stem."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int,
                 norm_cfg: dict):
        super().__init__()
        layers = []
        for i in range(3):
            layers += [
                nn.Conv2d(
                    in_channels if i == 0 else hidden,
                    hidden,
                    7 if i == 0 else 3,
                    stride=2 if i == 0 else 1,
                    padding=3 if i == 0 else 1,
                    bias=False),
                build_norm_layer(norm_cfg, hidden)[1],
                nn.ReLU(inplace=True)
            ]
        self.conv = nn.Sequential(*layers)
        self.proj = nn.Conv2d(hidden, out_channels, 3, stride=2, padding=1)
        self.norm = nn.LayerNorm(out_channels)  # torch's eps, as official

    def forward(self, x: Tensor, regions: Optional[ValidRegions] = None
                ) -> Tuple[Tensor, Optional[ValidRegions]]:
        """``(B, C, H, W)`` -> ``(B, H / 4, W / 4, C')`` and the regions
        there."""
        x, regions = run_padded([*self.conv, self.proj], x, regions)
        return self.norm(x.permute(0, 2, 3, 1)), regions


class DownSample(nn.Module):
    """3x3 stride-2 conv and LayerNorm between hierarchical stages."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, out_channels, 3, 2, padding=1)
        self.norm = nn.LayerNorm(out_channels)  # torch's eps, as official

    def forward(self, x: Tensor, regions: Optional[ValidRegions] = None
                ) -> Tuple[Tensor, Optional[ValidRegions]]:
        x, regions = run_padded([self.proj], x, regions)
        return self.norm(x.permute(0, 2, 3, 1)), regions


@MODELS.register_module()
class SpectFormer(IsotropicBackbone):
    """Vanilla SpectFormer (``t xs s b``), for any input size.

    A GFNet-like isotropic network: a 16x16 patch embedding with a learned
    position embedding, whose first ``spectral_depth`` (4) blocks are
    global-filter blocks and the rest pre-norm attention blocks, and a final
    norm (see :class:`IsotropicBackbone`; chain
    :class:`~mmspectral.models.necks.SimpleFPN` for dense heads). The
    official code hard-codes 6 attention heads, which only divides its
    384-wide models (its 256- and 512-wide ``spectformer-ti`` / ``-b``
    configs fail at run time); here the zoo uses 64-channel heads (4, 6, 6,
    8), so the published 384-wide checkpoints load unchanged, and a dict arch
    may set ``num_heads``. The hierarchical archs (``h-*``) are
    :class:`SpectFormerH`.

    Args:
        arch (str | dict): ``t``, ``xs``, ``s`` or ``b``, or a dict with
            ``embed_dims``, ``depths`` (ints), ``mlp_ratio`` and optionally
            ``num_heads`` (``embed_dims // 64``), ``spectral_depth`` (4) and
            ``patch_size`` (16). Defaults to ``'xs'``.
        **kwargs: The arguments every backbone shares, see
            :class:`SpectralBackbone` (``out_indices`` defaults to -1, the
            normed last block; ``drop_rate`` is also the attention dropout).
    """
    arch_zoo = {
        **dict.fromkeys(['t', 'tiny'], {
            'embed_dims': 256, 'depths': 12, 'mlp_ratio': 4,
            'num_heads': 4}),
        **dict.fromkeys(['xs', 'extra-small'], {
            'embed_dims': 384, 'depths': 12, 'mlp_ratio': 4,
            'num_heads': 6}),
        **dict.fromkeys(['s', 'small'], {
            'embed_dims': 384, 'depths': 19, 'mlp_ratio': 4,
            'num_heads': 6}),
        **dict.fromkeys(['b', 'base'], {
            'embed_dims': 512, 'depths': 19, 'mlp_ratio': 4,
            'num_heads': 8}),
    }  # yapf: disable
    essential_keys = ('embed_dims', 'depths', 'mlp_ratio')
    optional_keys = ('num_heads', 'spectral_depth', 'patch_size')
    fan_out_conv_init = True

    def __init__(self, arch: Union[str, dict] = 'xs', **kwargs):
        super().__init__(arch, **kwargs)
        settings = self.arch_settings
        dims, depth = settings['embed_dims'], settings['depths']
        shared = dict(drop_rate=self.drop_rate, resize_mode=self.resize_mode,
                      norm_cfg=self.norm_cfg, with_cp=self.with_cp)
        spectral_depth = settings.get('spectral_depth', 4)
        self.blocks = nn.Sequential(*[
            GFNetBlock(dims, self.native_grid, settings['mlp_ratio'],
                       drop_path_rate=rate, **shared)
            if i < spectral_depth else SpectFormerBlock(
                dims, settings.get('num_heads', dims // 64),
                settings['mlp_ratio'], drop_path_rate=rate, **shared)
            for i, rate in enumerate(self.stage_drop_path_rates([depth])[0])
        ])


@MODELS.register_module()
class SpectFormerH(SpectralBackbone):
    """Hierarchical SpectFormer (``h-s h-b h-l``), for any input size.

    A conv stem (stride 4), global-filter stages 1-2 and attention stages
    3-4 with PVTv2 FFNs, strides 4-32. The filters are stored at the
    official 224x224 sizes (56x29, 28x15) and resized to the input.
    ``out_type='cls_token'`` adds the official class-attention block and
    final norm and returns ``(class token, patch tokens)`` for
    :class:`SpectFormerTokenLabelHead`; ``'featmap'`` returns stage maps (the
    last one through the final norm) for dense heads, and a classification
    checkpoint loads into it (its class block is skipped).

    Args:
        arch (str | dict): ``h-s``, ``h-b`` or ``h-l``, or a dict with
            ``embed_dims``, ``depths``, ``num_heads``, ``mlp_ratios`` (four
            each) and ``stem_hidden_dim``. Defaults to ``'h-s'``.
        out_type (str): ``'featmap'`` or ``'cls_token'`` (classification).
            Defaults to ``'featmap'``.
        stem_norm_cfg (dict): Norm of the stem convolutions. Defaults to
            ``dict(type='BN')``.
        **kwargs: The arguments every backbone shares, see
            :class:`SpectralBackbone` (``norm_eval`` concerns the stem's
            BatchNorms).
    """
    arch_zoo = {
        'h-s': {'embed_dims': [64, 128, 320, 448], 'depths': [3, 4, 6, 3],
                'num_heads': [2, 4, 10, 14], 'mlp_ratios': [8, 8, 4, 4],
                'stem_hidden_dim': 32},
        'h-b': {'embed_dims': [64, 128, 320, 512], 'depths': [3, 4, 12, 3],
                'num_heads': [2, 4, 10, 16], 'mlp_ratios': [8, 8, 4, 4],
                'stem_hidden_dim': 64},
        'h-l': {'embed_dims': [96, 192, 384, 512], 'depths': [3, 6, 18, 3],
                'num_heads': [3, 6, 12, 16], 'mlp_ratios': [8, 8, 4, 4],
                'stem_hidden_dim': 64},
    }  # yapf: disable
    essential_keys = ('embed_dims', 'depths', 'num_heads', 'mlp_ratios',
                      'stem_hidden_dim')
    # a classification checkpoint's class block has no use in dense models
    pretrained_unused_ok = re.compile(r'^(norm\d*|post_network)\.')

    fan_out_conv_init = True

    def __init__(self,
                 arch: Union[str, dict] = 'h-s',
                 *,
                 out_type: str = 'featmap',
                 stem_norm_cfg: dict = dict(type='BN'),
                 **kwargs):
        super().__init__(arch, **kwargs)
        if out_type not in ('featmap', 'cls_token'):
            raise ValueError(f"out_type must be 'featmap' or 'cls_token', "
                             f'got {out_type!r}')
        if out_type == 'cls_token' and self.valid_region:
            raise ValueError("SpectFormerH: valid_region is implemented for "
                             "out_type='featmap' only")
        self.out_type = out_type
        settings, dims = self.arch_settings, self.embed_dims
        for i, rates in enumerate(
                self.stage_drop_path_rates(settings['depths'])):
            embed = Stem(self.in_channels, settings['stem_hidden_dim'],
                         dims[0], stem_norm_cfg) if i == 0 else DownSample(
                             dims[i - 1], dims[i])
            blocks = nn.ModuleList([
                SpectFormerBlock(
                    dims[i],
                    None if i < 2 else settings['num_heads'][i],
                    settings['mlp_ratios'][i],
                    spatial_size=self.pretrain_img_size // 2**(i + 2),
                    conv_ffn=True,
                    fused_qkv=False,
                    drop_rate=self.drop_rate,
                    drop_path_rate=rate,
                    resize_mode=self.resize_mode,
                    norm_cfg=self.norm_cfg,
                    with_cp=self.with_cp) for rate in rates
            ])
            self.add_module(f'patch_embed{i + 1}', embed)
            self.add_module(f'block{i + 1}', blocks)
            self.add_module(f'norm{i + 1}',
                            build_norm_layer(self.norm_cfg, dims[i])[1])
        if out_type == 'cls_token':
            self.post_network = nn.ModuleList([
                ClassBlock(dims[-1], settings['num_heads'][-1],
                           settings['mlp_ratios'][-1], self.norm_cfg)
            ])

    def stage_parts(self, index: int) -> list:
        if index == 0:
            return [self.patch_embed1]
        parts = [getattr(self, f'block{index}')]
        if index > 1:
            parts.insert(0, getattr(self, f'patch_embed{index}'))
        if index < 4:  # the last norm only serves the outputs
            parts.append(getattr(self, f'norm{index}'))
        return parts

    def forward(self, x: Tensor) -> tuple:
        x, regions = self.input_regions(x)
        outs = []
        for i in range(4):
            # (B, C, H, W) in, (B, H, W, C) out
            x, regions = getattr(self, f'patch_embed{i + 1}')(x, regions)
            for block in getattr(self, f'block{i + 1}'):
                x = block(x, regions)
            if i == 3 and self.out_type == 'cls_token':
                tokens = self.post_network[0](x.flatten(1, 2))
                tokens = self.norm4(tokens)
                return ((tokens[:, 0], tokens[:, 1:]), )
            x = getattr(self, f'norm{i + 1}')(x).permute(0, 3, 1, 2)
            if i in self.out_indices:
                outs.append(zero_padding(x, regions).contiguous())
        return tuple(outs)
