"""AFNO: Adaptive Fourier Neural Operators as token mixers (AFNONet).

Guibas et al., ICLR 2022, https://arxiv.org/abs/2111.13587.
Reproduces the behaviour and checkpoints of AFNONet in
https://github.com/NVlabs/AFNO-transformer (``classification/afnonet.py``).
"""
from typing import Optional, Union

import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks import DropPath
from torch import Tensor

from mmspectral.registry import MODELS
from ..layers import AFNO2d, CheckpointedBlock, Mlp
from .base import IsotropicBackbone, ValidRegions, filter_sizes


class AFNOBlock(CheckpointedBlock):
    """The official AFNONet block on ``(B, H, W, C)`` maps::

        y = afno(norm1(x))            # AFNO2d adds norm1(x) itself
        if double_skip: y = y + x; x = y
        out = x + drop_path(mlp(norm2(y)))

    Args:
        embed_dims (int): Channels.
        num_blocks (int): Blocks of the AFNO weights.
        mlp_ratio (float): Hidden/input channels of the MLP. Defaults to 4.
        hidden_size_factor (int): Width factor of the AFNO MLP. Defaults to 1.
        sparsity_threshold (float): AFNO softshrink. Defaults to 0.01.
        hard_thresholding_fraction (float): Kept fraction of frequencies per
            axis. Defaults to 1.
        double_skip (bool): Add the block input after the mixer as well
            (the official ``--double-skip``). Defaults to False.
        drop_rate (float): Dropout in the MLP. Defaults to 0.
        drop_path_rate (float): Stochastic depth of the MLP branch. Defaults
            to 0.
        norm_cfg (dict): Norm config. Defaults to ``dict(type='LN',
            eps=1e-6)``.
        with_cp (bool): Gradient checkpointing. Defaults to False.
    """

    def __init__(self,
                 embed_dims: int,
                 num_blocks: int,
                 mlp_ratio: float = 4.,
                 hidden_size_factor: int = 1,
                 sparsity_threshold: float = 0.01,
                 hard_thresholding_fraction: float = 1.,
                 double_skip: bool = False,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 with_cp: bool = False):
        super().__init__()
        self.double_skip = double_skip
        self.with_cp = with_cp
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.filter = AFNO2d(embed_dims, num_blocks, sparsity_threshold,
                             hard_thresholding_fraction, hidden_size_factor)
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio),
                       drop_rate=drop_rate)
        self.drop_path = DropPath(
            drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def _forward(self, x: Tensor,
                 regions: Optional[ValidRegions] = None) -> Tensor:
        y = self.filter(self.norm1(x), valid_sizes=filter_sizes(regions))
        if self.double_skip:
            y = x = y + x
        return x + self.drop_path(self.mlp(self.norm2(y)))


@MODELS.register_module()
class AFNO(IsotropicBackbone):
    """AFNONet: a ViT-style isotropic backbone whose token mixer is AFNO.

    Patch embedding and a learned position embedding (resized to the input
    grid), AFNO blocks and a final norm (see :class:`IsotropicBackbone`;
    chain :class:`~mmspectral.models.necks.SimpleFPN` for dense heads). Any
    input size works; the image is zero-padded to a multiple of the patch
    size.

    The arch zoo (no official ImageNet weights are published, so these are
    the configurations the official code names):

    * ``ti``: 256 channels, 12 blocks, 4 AFNO blocks: the training command of
      the official classification README.
    * ``s``: 384 channels, 12 blocks, 8 AFNO blocks: the default
      ``--hidden-size`` of ``main_afnonet.py`` with AFNO2D's default
      ``num_blocks``.
    * ``b``: 768 channels, 12 blocks, 8 AFNO blocks: ``AFNONet``'s default
      ``embed_dim`` with the 8 blocks its ``Block`` builds.

    Args:
        arch (str | dict): A name above or a dict with ``embed_dims``,
            ``depths``, ``num_blocks``, ``mlp_ratio`` and optionally
            ``hidden_size_factor`` and ``patch_size`` (16). Defaults to
            ``'ti'``.
        sparsity_threshold (float): AFNO softshrink. Defaults to 0.01.
        hard_thresholding_fraction (float): Kept fraction of frequencies per
            axis (see :func:`kept_mode_indices`). Defaults to 1.
        double_skip (bool): The official ``--double-skip`` block variant.
            Defaults to False, the official default.
        **kwargs: The arguments every backbone shares, see
            :class:`SpectralBackbone` (``out_indices`` defaults to -1, the
            normed last block; AFNO has no global filters to resize).
    """
    arch_zoo = {
        **dict.fromkeys(['ti', 'tiny'], {
            'embed_dims': 256, 'depths': 12, 'num_blocks': 4,
            'mlp_ratio': 4}),
        **dict.fromkeys(['s', 'small'], {
            'embed_dims': 384, 'depths': 12, 'num_blocks': 8,
            'mlp_ratio': 4}),
        **dict.fromkeys(['b', 'base'], {
            'embed_dims': 768, 'depths': 12, 'num_blocks': 8,
            'mlp_ratio': 4}),
    }  # yapf: disable
    essential_keys = ('embed_dims', 'depths', 'num_blocks', 'mlp_ratio')
    optional_keys = ('hidden_size_factor', 'patch_size')
    default_resize_mode = None

    def __init__(self,
                 arch: Union[str, dict] = 'ti',
                 *,
                 sparsity_threshold: float = 0.01,
                 hard_thresholding_fraction: float = 1.,
                 double_skip: bool = False,
                 **kwargs):
        super().__init__(arch, **kwargs)
        settings = self.arch_settings
        depth = settings['depths']
        self.blocks = nn.Sequential(*[
            AFNOBlock(
                settings['embed_dims'],
                settings['num_blocks'],
                mlp_ratio=settings['mlp_ratio'],
                hidden_size_factor=settings.get('hidden_size_factor', 1),
                sparsity_threshold=sparsity_threshold,
                hard_thresholding_fraction=hard_thresholding_fraction,
                double_skip=double_skip,
                drop_rate=self.drop_rate,
                drop_path_rate=rate,
                norm_cfg=self.norm_cfg,
                with_cp=self.with_cp)
            for rate in self.stage_drop_path_rates([depth])[0]
        ])
