from typing import List, Sequence

import torch.nn as nn
from mmcv.cnn import build_activation_layer
from torch import Tensor

from .norm import build_norm2d


class SimpleFeaturePyramid(nn.Module):
    """Four strides from the single stride-16 map of an isotropic backbone.

    As in ViTDet (Li et al., 2022, https://arxiv.org/abs/2203.16527): level 0
    (stride 4) is two 2x2 transposed convolutions with a norm and activation
    between them, level 1 (stride 8) one transposed convolution, level 2
    (stride 16) the input itself, level 3 (stride 32) a 2x2 max-pool. Channels
    are ``C/4, C/2, C, C``, so a standard FPN neck takes the outputs
    unchanged. Only the levels asked for are built.

    Args:
        embed_dims (int): Channels ``C`` of the input map.
        out_indices (Sequence[int]): Levels to build and return, from 0..3.
        norm_cfg (dict): Norm between the two transposed convolutions of level
            0. Defaults to ``dict(type='LN2d', eps=1e-6)``.
        act_cfg (dict): Activation there. Defaults to ``dict(type='GELU')``.
    """

    def __init__(self,
                 embed_dims: int,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 norm_cfg: dict = dict(type='LN2d', eps=1e-6),
                 act_cfg: dict = dict(type='GELU')):
        super().__init__()
        self.out_indices = tuple(out_indices)
        self.out_channels = [
            embed_dims // 4, embed_dims // 2, embed_dims, embed_dims
        ]
        builders = {
            0: lambda: nn.Sequential(
                nn.ConvTranspose2d(embed_dims, embed_dims // 2, 2, 2),
                build_norm2d(norm_cfg, embed_dims // 2),
                build_activation_layer(act_cfg),
                nn.ConvTranspose2d(embed_dims // 2, embed_dims // 4, 2, 2)),
            1: lambda: nn.ConvTranspose2d(embed_dims, embed_dims // 2, 2, 2),
            2: nn.Identity,
            # ceil_mode keeps stride 32 at ceil(H / 32) for odd grids
            3: lambda: nn.MaxPool2d(2, 2, ceil_mode=True),
        }
        self.levels = nn.ModuleDict(
            {str(i): builders[i]()
             for i in self.out_indices})

    def forward(self, x: Tensor) -> List[Tensor]:
        # LN2d leaves level 0 channels-last in memory, and so would the FPN
        # convolutions after it; mmcv's CPU RoIAlign reads its input as
        # contiguous NCHW and pools garbage from such a map
        return [self.levels[str(i)](x).contiguous() for i in self.out_indices]
