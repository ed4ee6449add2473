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


def test_layer_ids_are_mmdets_and_mmsegs():
    """The ids of mmdet's ConvNeXt rule (stage-wise: mmseg's), which the
    official HorNet recipes use, without importing either library here."""
    from mmdet.engine.optimizers.layer_decay_optimizer_constructor import (
        get_layer_id_for_convnext, get_stage_id_for_convnext)

    from mmspectral.engine.optimizers import (convnext_layer_id,
                                              convnext_stage_id)
    model = Detector()
    names = [n for n, _ in model.named_parameters()] + ['backbone.pos_embed']
    for name in names:
        assert convnext_layer_id(name, 12) == get_layer_id_for_convnext(
            name, 12), name
        assert convnext_stage_id(name, 14) == get_stage_id_for_convnext(
            name, 14), name


def test_an_mmseg_config_does_not_import_mmdet():
    import subprocess
    import sys
    script = ('import sys, mmspectral.engine\n'
              'from mmspectral.engine import LayerDecayOptimizerConstructor\n'
              'import torch.nn as nn\n'
              'm = nn.Module(); m.backbone = nn.Linear(2, 2)\n'
              "LayerDecayOptimizerConstructor(dict(type='OptimWrapper', "
              "optimizer=dict(type='AdamW', lr=1.0)), dict(num_layers=6, "
              "decay_rate=0.5))(m)\n"
              "print('mmdet' in sys.modules)\n")
    out = subprocess.run([sys.executable, '-c', script], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == 'False'
