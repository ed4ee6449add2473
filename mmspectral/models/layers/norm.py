import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from torch import Tensor


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a ``(B, C, H, W)`` map."""

    def forward(self, x: Tensor) -> Tensor:
        x = F.layer_norm(
            x.permute(0, 2, 3, 1), self.normalized_shape, self.weight,
            self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


def build_norm2d(norm_cfg: dict, num_features: int) -> nn.Module:
    """A norm layer for ``(B, C, H, W)`` maps: ``type='LN2d'`` gives
    :class:`LayerNorm2d`, anything else goes to mmcv's ``build_norm_layer``
    (``BN``, ``SyncBN``, ``GN``...)."""
    cfg = dict(norm_cfg)
    if cfg.pop('type') == 'LN2d':
        return LayerNorm2d(num_features, **cfg)
    return build_norm_layer(norm_cfg, num_features)[1]
