"""The attention layers of the hybrid (spectral + attention) families."""
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class MultiheadSelfAttention(nn.Module):
    """Plain multi-head self-attention on ``(B, N, C)`` tokens.

    Args:
        embed_dims (int): Channels.
        num_heads (int): Heads; ``embed_dims`` must be a multiple.
        qkv_bias (bool): Biases of the query/key/value projections. Defaults
            to True.
        fused_qkv (bool): One ``qkv`` projection (ViT/DeiT key layout) or
            separate ``q`` and ``kv`` ones (PVTv2 layout). Defaults to True.
        attn_drop (float): Attention dropout. Defaults to 0.
        proj_drop (float): Output dropout. Defaults to 0.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 qkv_bias: bool = True,
                 fused_qkv: bool = True,
                 attn_drop: float = 0.,
                 proj_drop: float = 0.):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims {embed_dims} is not a multiple of '
                             f'num_heads {num_heads}')
        self.num_heads = num_heads
        self.fused_qkv = fused_qkv
        self.attn_drop = attn_drop
        if fused_qkv:
            self.qkv = nn.Linear(embed_dims, 3 * embed_dims, bias=qkv_bias)
        else:
            self.q = nn.Linear(embed_dims, embed_dims, bias=qkv_bias)
            self.kv = nn.Linear(embed_dims, 2 * embed_dims, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)

    def _heads(self, x: Tensor, parts: int) -> Tensor:
        batch, tokens, _ = x.shape
        return x.reshape(batch, tokens, parts, self.num_heads,
                         -1).permute(2, 0, 3, 1, 4)

    def forward(self, x: Tensor, key_mask: Optional[Tensor] = None
                ) -> Tensor:
        """Attend over ``x`` ``(B, N, C)``; with ``key_mask`` ``(B, N)``
        (bool) only the tokens it marks are keys."""
        if self.fused_qkv:
            q, k, v = self._heads(self.qkv(x), 3)
        else:
            q = self._heads(self.q(x), 1)[0]
            k, v = self._heads(self.kv(x), 2)
        out = F.scaled_dot_product_attention(
            q, k, v,
            attn_mask=None if key_mask is None else key_mask[:, None, None],
            dropout_p=self.attn_drop if self.training else 0.)
        out = out.transpose(1, 2).flatten(2)
        return self.proj_drop(self.proj(out))


class ClassAttention(nn.Module):
    """Class attention (CaiT): only the first token (the class token)
    queries all tokens; returns its update, ``(B, 1, C)``.

    Args:
        embed_dims (int): Channels.
        num_heads (int): Heads.
    """

    def __init__(self, embed_dims: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(embed_dims, embed_dims)
        self.kv = nn.Linear(embed_dims, 2 * embed_dims)
        self.proj = nn.Linear(embed_dims, embed_dims)

    def forward(self, x: Tensor) -> Tensor:
        batch, tokens, channels = x.shape
        q = self.q(x[:, :1]).reshape(batch, 1, self.num_heads,
                                     -1).transpose(1, 2)
        k, v = self.kv(x).reshape(batch, tokens, 2, self.num_heads,
                                  -1).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(batch, 1, channels))
