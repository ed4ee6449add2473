import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model.weight_init import trunc_normal_
from torch import Tensor

from .utils import ResizeCache, to_2tuple


def resize_pos_embed(pos_embed: Tensor, src_size, dst_size) -> Tensor:
    """Bicubically resize a ``(1, H0 * W0, C)`` grid of position embeddings to
    ``(1, H * W, C)`` (row-major tokens)."""
    (h0, w0), (h, w) = to_2tuple(src_size), to_2tuple(dst_size)
    if (h0, w0) == (h, w):
        return pos_embed
    grid = pos_embed.reshape(1, h0, w0, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(
        grid.float(), size=(h, w), mode='bicubic', align_corners=False)
    return grid.to(pos_embed.dtype).flatten(2).transpose(1, 2)


class PositionEmbedding(nn.Module):
    """Learned absolute position embedding added to a ``(B, H, W, C)`` map.

    Stored for a native grid (as the official checkpoints store it, shape
    ``(1, H0 * W0, C)``) and resized bicubically to the grid of each input;
    in eval mode the resized embedding is cached. A checkpoint holding another
    square grid is resized to this one when loaded.

    Args:
        embed_dims (int): Number of channels.
        grid_size (int | tuple[int, int]): Native grid ``(H0, W0)``.
    """

    def __init__(self, embed_dims: int, grid_size):
        super().__init__()
        self.grid_size = to_2tuple(grid_size)
        self.weight = nn.Parameter(
            torch.zeros(1, self.grid_size[0] * self.grid_size[1], embed_dims))
        trunc_normal_(self.weight, std=.02)
        self.resize_cache = ResizeCache()

    def train(self, mode: bool = True):
        self.resize_cache.clear()
        return super().train(mode)

    def forward(self, x: Tensor) -> Tensor:
        size = tuple(x.shape[1:3])
        if size == self.grid_size:
            pos = self.weight
        else:
            pos = self.resize_cache.get(
                self, self.weight, size,
                lambda: resize_pos_embed(self.weight, self.grid_size, size))
        return x + pos.reshape(1, size[0], size[1], -1)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + 'weight'
        weight = state_dict.get(key)
        if weight is not None and weight.dim() == 3 and \
                weight.shape[1] != self.weight.shape[1] and \
                weight.shape[2] == self.weight.shape[2]:
            side = int(round(weight.shape[1]**0.5))
            if side * side == weight.shape[1]:
                state_dict[key] = resize_pos_embed(weight, side,
                                                   self.grid_size)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
