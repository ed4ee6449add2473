"""ViTDet's simple feature pyramid, as a neck for the isotropic backbones."""
import math
from typing import Sequence, Tuple, Union

import torch.nn as nn
from mmcv.cnn import build_activation_layer
from mmengine.model import BaseModule
from torch import Tensor

from mmspectral.registry import MODELS
from ..backbones.base import ValidRegions, bounding_sizes
from ..layers import build_norm2d


@MODELS.register_module()
class SimpleFPN(BaseModule):
    """Four strides from the single stride-16 map of an isotropic backbone
    (GFNet, AFNO, vanilla SpectFormer).

    As in ViTDet (Li et al., 2022, https://arxiv.org/abs/2203.16527): level 0
    (stride 4) is two 2x2 transposed convolutions with a norm and an
    activation between them, level 1 (stride 8) one transposed convolution,
    level 2 (stride 16) the input itself and level 3 (stride 32) a 2x2
    max-pool. The channels are ``C/4, C/2, C, C``, so a standard ``FPN``
    neck follows unchanged (chain the two: ``neck=[dict(type=
    'mmspectral.SimpleFPN', ...), dict(type='FPN', ...)]``); a decode head
    that takes four maps can follow directly. Unlike mmdet's ViTDet
    ``SimpleFPN`` it has no lateral or output convolutions of its own: that
    is the FPN's work. Only the levels asked for are built.

    Args:
        in_channels (int): Channels ``C`` of the input map.
        out_indices (Sequence[int]): Levels to build and return, from 0..3
            (strides 4, 8, 16, 32). Defaults to ``(0, 1, 2, 3)``.
        norm_cfg (dict): Norm between the two transposed convolutions of
            level 0. Defaults to ``dict(type='LN2d', eps=1e-6)``.
        act_cfg (dict): Activation there. Defaults to ``dict(type='GELU')``.
        valid_region (bool): Keep the batch padding invariance of a backbone
            with ``valid_region=True``: each image's region is read off its
            input (the backbone returns zeros beyond it, so the trailing rows
            and columns that are zero in every channel), the stride-32
            max-pool sees only the region, as for the image alone, and every
            level is zero beyond it. Defaults to False.
        init_cfg (dict, optional): Initialization config. Defaults to None
            (PyTorch's default initialisation).
    """

    def __init__(self,
                 in_channels: int,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 norm_cfg: dict = dict(type='LN2d', eps=1e-6),
                 act_cfg: dict = dict(type='GELU'),
                 valid_region: bool = False,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if not out_indices or not set(out_indices) <= {0, 1, 2, 3}:
            raise ValueError('SimpleFPN: out_indices must be levels from '
                             f'0..3, got {out_indices!r}')
        self.in_channels = in_channels
        self.valid_region = valid_region
        self.out_indices = tuple(sorted(set(out_indices)))
        channels = [in_channels // 4, in_channels // 2, in_channels,
                    in_channels]
        self.out_channels = [channels[i] for i in self.out_indices]
        builders = {
            0: lambda: nn.Sequential(
                nn.ConvTranspose2d(in_channels, in_channels // 2, 2, 2),
                build_norm2d(norm_cfg, in_channels // 2),
                build_activation_layer(act_cfg),
                nn.ConvTranspose2d(in_channels // 2, in_channels // 4, 2, 2)),
            1: lambda: nn.ConvTranspose2d(in_channels, in_channels // 2, 2,
                                          2),
            2: nn.Identity,
            # ceil_mode keeps stride 32 at ceil(H / 32) for odd grids
            3: lambda: nn.MaxPool2d(2, 2, ceil_mode=True),
        }
        self.levels = nn.ModuleDict(
            {str(i): builders[i]()
             for i in self.out_indices})

    def forward(self, inputs: Union[Tensor, Sequence[Tensor]]
                ) -> Tuple[Tensor, ...]:
        """The levels of the one ``(B, C, H, W)`` map in ``inputs`` (the
        backbone's output tuple, or the map itself)."""
        if not isinstance(inputs, Tensor):
            if len(inputs) != 1:
                raise ValueError(
                    f'SimpleFPN takes one stride-16 map, got {len(inputs)}: '
                    "set the backbone's out_indices to one index (-1, the "
                    'last block, is the default)')
            inputs = inputs[0]
        if inputs.dim() != 4 or inputs.shape[1] != self.in_channels:
            raise ValueError(
                f'SimpleFPN expects a (B, {self.in_channels}, H, W) map, got '
                f'shape {tuple(inputs.shape)}')
        # LN2d leaves level 0 channels-last in memory, and so would the FPN
        # convolutions after it; mmcv's CPU RoIAlign reads its input as
        # contiguous NCHW and pools garbage from such a map
        if not self.valid_region:
            return tuple(self.levels[str(i)](inputs).contiguous()
                         for i in self.out_indices)
        regions = regions_of_zero_padded(inputs)
        return tuple(
            self._valid_level(i, inputs, regions).contiguous()
            for i in self.out_indices)

    def _valid_level(self, index: int, x: Tensor,
                     regions: ValidRegions) -> Tensor:
        if index == 3:  # the pool sees the region only
            x = x.masked_fill(~regions.mask(x.device)[:, None], -math.inf)
        out = self.levels[str(index)](x)
        scale = 2**(2 - index)
        if scale >= 1:
            regions = ValidRegions(
                [(h * scale, w * scale) for h, w in regions.sizes],
                out.shape[-2:])
        else:
            regions = regions.at(2, out.shape[-2:])
        return regions.zero(out)


def regions_of_zero_padded(x: Tensor) -> ValidRegions:
    """Each image's region of a ``(B, C, H, W)`` batch of maps that are
    zero beyond it: up to its last row and column non-zero in some
    channel."""
    sizes = bounding_sizes(x.ne(0).any(1))
    return ValidRegions([size or x.shape[-2:] for size in sizes],
                        x.shape[-2:])
