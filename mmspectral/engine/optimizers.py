"""Layer-wise learning-rate decay for backbones with ConvNeXt's layout
(``downsample_layers`` / ``stages``), such as HorNet.

mmdet's and mmseg's ``LearningRateDecayOptimizerConstructor`` accept only
backbones whose class name contains "ConvNeXt"; the official HorNet recipes
use the same decay, so this constructor applies their layer / stage ids to
any backbone with that layout.
"""
from typing import List

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor

from mmspectral.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    """Scale each parameter's lr by ``decay_rate ** (num_layers + 1 - id)``.

    ``paramwise_cfg`` holds ``num_layers``, ``decay_rate`` and
    ``decay_type``: ``'layer_wise'`` (ids by block, as mmdet) or
    ``'stage_wise'`` (ids by stage, as mmseg). Biases and 1-D parameters
    get no weight decay.
    """

    def add_params(self, params: List[dict], module: nn.Module, **kwargs):
        from mmdet.engine.optimizers.layer_decay_optimizer_constructor import (
            get_layer_id_for_convnext, get_stage_id_for_convnext)
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
                layer_id = get_layer_id_for_convnext(
                    name, self.paramwise_cfg['num_layers'])
            else:
                layer_id = get_stage_id_for_convnext(name, num_layers)
            key = (layer_id, no_decay)
            if key not in groups:
                scale = decay_rate**(num_layers - layer_id - 1)
                groups[key] = dict(
                    params=[],
                    lr=self.base_lr * scale,
                    weight_decay=0. if no_decay else self.base_wd)
            groups[key]['params'].append(param)
        params.extend(groups[key] for key in sorted(groups))
