"""Layer-wise learning-rate decay for backbones with ConvNeXt's layout
(``downsample_layers`` / ``stages``), such as HorNet.

mmdet's and mmseg's ``LearningRateDecayOptimizerConstructor`` accept only
backbones whose class name contains "ConvNeXt", and each lives in its own
library; the official HorNet recipes use the same decay, so this
constructor (importing neither library) applies ConvNeXt's layer / stage
ids to any backbone with that layout.
"""
import re
from typing import List

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor

from mmspectral.registry import OPTIM_WRAPPER_CONSTRUCTORS

__all__ = ['LayerDecayOptimizerConstructor', 'convnext_layer_id',
           'convnext_stage_id']

_PART = re.compile(r'backbone\.(downsample_layers|stages)\.(\d+)\.(\d+)')


def convnext_layer_id(name: str, num_layers: int) -> int:
    """The depth of parameter ``name`` for ``'layer_wise'`` decay: the stem
    is 0, stage 1 is 1, the second downsampling and stage 2 are 2, stage 3
    counts one layer per three blocks from 3, and the last downsampling and
    stage are ``num_layers``; anything outside the backbone is
    ``num_layers + 1`` (full learning rate)."""
    match = _PART.match(name)
    if match is None:
        return 0 if name == 'backbone.pos_embed' else num_layers + 1
    part, stage, block = match.group(1), int(match.group(2)), int(
        match.group(3))
    if stage == 3:
        return num_layers
    if part == 'downsample_layers':
        return (0, 2, 3)[stage]
    return (1, 2, 3 + block // 3)[stage]


def convnext_stage_id(name: str, num_stages: int) -> int:
    """The depth of parameter ``name`` for ``'stage_wise'`` decay: the
    downsampling layers are 0, stage ``i`` (0-based) is ``i + 1``, anything
    outside the backbone ``num_stages - 1``."""
    match = _PART.match(name)
    if match is None:
        return 0 if name == 'backbone.pos_embed' else num_stages - 1
    return 0 if match.group(1) == 'downsample_layers' else int(
        match.group(2)) + 1


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    """Scale each parameter's lr by ``decay_rate ** (num_layers + 1 - id)``.

    ``paramwise_cfg`` holds ``num_layers``, ``decay_rate`` and
    ``decay_type``: ``'layer_wise'`` (ids by block, as mmdet) or
    ``'stage_wise'`` (ids by stage, as mmseg), see
    :func:`convnext_layer_id` and :func:`convnext_stage_id`. Biases and 1-D
    parameters get no weight decay.
    """

    def add_params(self, params: List[dict], module: nn.Module, **kwargs):
        num_layers = self.paramwise_cfg['num_layers'] + 2
        decay_rate = self.paramwise_cfg['decay_rate']
        decay_type = self.paramwise_cfg.get('decay_type', 'layer_wise')
        if decay_type not in ('layer_wise', 'stage_wise'):
            raise ValueError("decay_type must be 'layer_wise' or "
                             f"'stage_wise', got {decay_type!r}")
        groups = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            no_decay = param.ndim == 1 or name.endswith('.bias')
            if decay_type == 'layer_wise':
                layer_id = convnext_layer_id(
                    name, self.paramwise_cfg['num_layers'])
            else:
                layer_id = convnext_stage_id(name, num_layers)
            key = (layer_id, no_decay)
            if key not in groups:
                scale = decay_rate**(num_layers - layer_id - 1)
                groups[key] = dict(
                    params=[],
                    lr=self.base_lr * scale,
                    weight_decay=0. if no_decay else self.base_wd)
            groups[key]['params'].append(param)
        params.extend(groups[key] for key in sorted(groups))
