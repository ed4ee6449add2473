import pytest
import torch.nn as nn

from mmspectral.engine import LayerDecayOptimizerConstructor
from backbone_cases import HORNET_GF


class Detector(nn.Module):

    def __init__(self):
        super().__init__()
        cls, arch = HORNET_GF
        self.backbone = cls(arch)
        self.neck = nn.Conv2d(4, 4, 1)


@pytest.mark.parametrize('decay_type', ['layer_wise', 'stage_wise'])
def test_layer_decay_scales_lr_by_depth(decay_type):
    model = Detector()
    wrapper = LayerDecayOptimizerConstructor(
        dict(type='OptimWrapper',
             optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05)),
        dict(num_layers=6, decay_rate=0.5, decay_type=decay_type))(model)
    lr = {}
    names = {id(p): n for n, p in model.named_parameters()}
    for group in wrapper.optimizer.param_groups:
        for param in group['params']:
            lr[names[id(param)]] = (group['lr'], group['weight_decay'])
    assert len(lr) == len(names)
    stem = lr['backbone.downsample_layers.0.0.weight'][0]
    deep = lr['backbone.stages.3.0.pwconv1.weight'][0]
    assert stem < lr['backbone.stages.1.0.pwconv1.weight'][0] < deep
    assert lr['neck.weight'][0] == 1.0  # outside the backbone: full lr
    assert lr['backbone.stages.1.0.pwconv1.bias'][1] == 0.
    assert lr['backbone.stages.1.0.pwconv1.weight'][1] == 0.05


def test_unknown_decay_type():
    with pytest.raises(ValueError, match='decay_type'):
        LayerDecayOptimizerConstructor(
            dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1.0)),
            dict(num_layers=6, decay_rate=0.5, decay_type='x'))(Detector())
