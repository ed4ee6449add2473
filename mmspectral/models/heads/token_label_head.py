"""The hierarchical SpectFormer's classification head.

Importing this module imports mmpretrain, so ``mmspectral`` does not import
it: configs that use the head list ``'mmspectral.models.heads'`` in
``custom_imports``.
"""
from typing import List, Optional, Tuple

import torch.nn as nn
from mmpretrain.models.heads import ClsHead
from torch import Tensor

from mmspectral.registry import MODELS


@MODELS.register_module()
class SpectFormerTokenLabelHead(ClsHead):
    """Class-token classifier plus a token-label auxiliary classifier.

    Takes the backbone's ``(class token, patch tokens)`` (``SpectFormer``
    with ``out_type='cls_token'``) and scores them as the official model
    does at inference: ``fc(cls) + aux_weight * max_over_tokens(aux_fc(
    tokens))``. Token labelling needs dense per-token targets that an
    mmpretrain dataset does not provide, so training optimises the class
    token's ``fc`` scores only (the auxiliary classifier keeps its
    pretrained weights).

    Args:
        num_classes (int): Classes.
        in_channels (int): Channels of the tokens.
        aux_weight (float): Weight of the token-label scores. Defaults to
            0.5, as the official code.
        init_cfg (dict, optional): Defaults to a truncated-normal linear
            initialisation (std 0.02).
        **kwargs: The arguments of mmpretrain's ``ClsHead`` (``loss``,
            ``topk``, ``cal_acc``).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 aux_weight: float = 0.5,
                 init_cfg: Optional[dict] = dict(
                     type='TruncNormal', layer='Linear', std=.02),
                 **kwargs):
        super().__init__(init_cfg=init_cfg, **kwargs)
        self.aux_weight = aux_weight
        self.fc = nn.Linear(in_channels, num_classes)
        self.aux_fc = nn.Linear(in_channels, num_classes)

    def pre_logits(self, feats: Tuple) -> Tuple[Tensor, Tensor]:
        cls_token, patch_tokens = feats[-1]
        return cls_token, patch_tokens

    def forward(self, feats: Tuple) -> Tensor:
        cls_token, patch_tokens = self.pre_logits(feats)
        aux = self.aux_fc(patch_tokens).max(dim=1).values
        return self.fc(cls_token) + self.aux_weight * aux

    def loss(self, feats: Tuple, data_samples: List, **kwargs) -> dict:
        cls_token, _ = self.pre_logits(feats)
        return self._get_loss(self.fc(cls_token), data_samples, **kwargs)
