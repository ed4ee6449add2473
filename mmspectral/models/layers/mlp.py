from typing import Optional

import torch.nn as nn
from mmcv.cnn import build_activation_layer
from torch import Tensor


class Mlp(nn.Module):
    """Two linear layers with an activation between, over the last dim.

    Args:
        in_features (int): Input (and output) channels.
        hidden_features (int): Hidden channels.
        act_cfg (dict): Activation config. Defaults to ``dict(type='GELU')``.
        drop_rate (float): Dropout after each linear layer. Defaults to 0.
    """

    def __init__(self,
                 in_features: int,
                 hidden_features: int,
                 act_cfg: dict = dict(type='GELU'),
                 drop_rate: float = 0.):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = build_activation_layer(act_cfg)
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop = nn.Dropout(drop_rate)

    def forward(self, x: Tensor) -> Tensor:
        x = self.drop(self.act(self.fc1(x)))
        return self.drop(self.fc2(x))


class ConvMlp(nn.Module):
    """PVTv2's FFN on ``(B, H, W, C)`` maps: ``fc1``, a 3x3 depthwise conv
    (with bias), the activation, ``fc2``.

    Args:
        in_features (int): Input (and output) channels.
        hidden_features (int): Hidden channels.
        act_cfg (dict): Activation config. Defaults to ``dict(type='GELU')``.
    """

    def __init__(self,
                 in_features: int,
                 hidden_features: int,
                 act_cfg: dict = dict(type='GELU')):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.dwconv = nn.Conv2d(
            hidden_features, hidden_features, 3, padding=1,
            groups=hidden_features)
        self.act = build_activation_layer(act_cfg)
        self.fc2 = nn.Linear(hidden_features, in_features)

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """``x`` ``(B, H, W, C)``; with ``mask`` ``(B, H, W)`` (bool) the
        depthwise conv sees zeros where it is False (batch padding)."""
        x = self.fc1(x)
        if mask is not None:
            x = x.masked_fill(~mask[..., None], 0)
        x = self.dwconv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return self.fc2(self.act(x))
