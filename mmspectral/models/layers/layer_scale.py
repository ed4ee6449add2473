import torch
import torch.nn as nn
from torch import Tensor


class LayerScale(nn.Module):
    """Per-channel learnable scale of a residual branch (CaiT).

    Args:
        embed_dims (int): Number of channels.
        init_value (float): Initial value of every scale. Defaults to 1e-5.
        channels_last (bool): If True the channels are the last dim of the
            input, else dim 1 of a ``(B, C, H, W)`` input. Defaults to True.
    """

    def __init__(self,
                 embed_dims: int,
                 init_value: float = 1e-5,
                 channels_last: bool = True):
        super().__init__()
        self.channels_last = channels_last
        self.gamma = nn.Parameter(torch.full((embed_dims, ), init_value))

    def forward(self, x: Tensor) -> Tensor:
        if self.channels_last:
            return x * self.gamma
        return x * self.gamma.view(-1, 1, 1)
