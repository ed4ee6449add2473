"""The official HorNet dense checkpoints (mmdet 2.x Cascade Mask R-CNN and
mmseg 0.x UperNet, official backbone key layout) convert strictly into the
published configs: built here in that exact layout, converted with
tools/model_converters/hornet2mmspectral.py, and evaluated by tools/test.py
on the tiny data."""
import re

import pytest
import torch
from mmengine.config import Config
from published_cases import (HORNET, official_hornet_backbone, shrink,
                             small_hornet_arch)

from mmspectral.converters import convert_hornet
from tool_modules import short_run
from tool_runs import checked, run

CONVERTER = 'model_converters/hornet2mmspectral.py'
# head keys of the official checkpoints, as mmdet 2.x / mmseg 0.x name them
# (mmdet 3 / mmseg 1 kept these names)
OFFICIAL_HEAD_KEYS = {
    'detection': [
        'neck.lateral_convs.0.conv.weight', 'neck.fpn_convs.3.conv.bias',
        'rpn_head.rpn_conv.weight', 'rpn_head.rpn_cls.bias',
        'rpn_head.rpn_reg.weight',
        'roi_head.bbox_head.0.shared_convs.3.conv.weight',
        'roi_head.bbox_head.1.shared_convs.0.bn.running_var',
        'roi_head.bbox_head.2.shared_fcs.0.weight',
        'roi_head.bbox_head.2.fc_cls.weight',
        'roi_head.bbox_head.0.fc_reg.bias',
        'roi_head.mask_head.0.convs.3.conv.weight',
        'roi_head.mask_head.2.upsample.weight',
        'roi_head.mask_head.1.conv_logits.bias'],
    'segmentation': [
        'decode_head.psp_modules.3.1.conv.weight',
        'decode_head.bottleneck.bn.running_mean',
        'decode_head.lateral_convs.2.conv.weight',
        'decode_head.fpn_convs.0.bn.weight',
        'decode_head.fpn_bottleneck.conv.weight',
        'decode_head.conv_seg.bias', 'auxiliary_head.convs.0.conv.weight',
        'auxiliary_head.conv_seg.weight'],
}


def build_model(cfg):
    import importlib

    from mmengine.registry import DefaultScope
    registry = importlib.import_module(f'{cfg.default_scope}.registry')
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        return registry.MODELS.build(cfg.model)


def published_arch(cfg) -> tuple:
    """The zoo arch and filter image size of a published config."""
    backbone = cfg.model.backbone
    return backbone.arch, backbone.get('pretrain_img_size') or 224


def official_checkpoint(cfg, model) -> dict:
    """An official dense state dict for ``model``'s heads and a backbone
    of ``cfg``'s (shrunk) arch in the official layout."""
    arch = cfg.model.backbone.arch
    heads = {k: v.clone() for k, v in model.state_dict().items()
             if not k.startswith('backbone.')}
    task = 'detection' if cfg.default_scope == 'mmdet' else 'segmentation'
    assert set(OFFICIAL_HEAD_KEYS[task]) <= set(heads)
    return dict(official_hornet_backbone(
        arch, cfg.model.backbone.get('pretrain_img_size', 224) // 16),
        **heads)


@pytest.mark.parametrize('path', HORNET, ids=lambda p: p.stem)
def test_arch_and_filter_size_are_read_from_the_shapes(path):
    """Every published config's official checkpoint (at full size, shapes
    only) converts to that config's arch and filter size."""
    cfg = Config.fromfile(path)
    arch, img_size = published_arch(cfg)
    from mmspectral.models import HorNet
    official = official_hornet_backbone(HorNet.arch_zoo[arch], img_size //
                                        16, device='meta')
    head = 'roi_head.bbox_head.0.fc_cls.weight' if 'rpn_head' in \
        cfg.model else 'decode_head.conv_seg.weight'
    classes = 81 if 'rpn_head' in cfg.model else 150
    official[head] = torch.empty(classes, 16, device='meta')
    _, meta = convert_hornet(official)
    assert (meta['arch'], meta['pretrain_img_size']) == (arch, img_size)
    assert meta['num_classes'] == (80 if 'rpn_head' in cfg.model else 150)
    assert meta['task'] == ('detection' if 'rpn_head' in cfg.model else
                            'segmentation')


def test_a_key_no_rule_places_is_refused():
    arch = small_hornet_arch('t-gf')
    official = official_hornet_backbone(arch, 14)
    official['decode_head.conv_seg.weight'] = torch.zeros(150, 16, 1, 1)
    official['decode_head.extra.weight'] = torch.zeros(1)
    from mmspectral.checkpoint import CheckpointError
    with pytest.raises(CheckpointError, match=r"decode_head\.extra\.weight"):
        convert_hornet(official)


TESTED = [p for p in HORNET if re.search(r'hornet-t-gf_', p.name)]


@pytest.mark.timeout(300)
@pytest.mark.parametrize('path', TESTED, ids=lambda p: p.stem)
def test_official_checkpoint_converts_and_evaluates(path, tiny_data,
                                                    tmp_path):
    cfg = short_run(shrink(Config.fromfile(path)), tiny_data,
                    tmp_path / 'work')
    config = tmp_path / 'config.py'
    cfg.dump(str(config))
    official = official_checkpoint(cfg, build_model(cfg))
    src, dst = tmp_path / 'official.pth', tmp_path / 'converted.pth'
    torch.save({'meta': {'CLASSES': ('a', 'b', 'c')},
                'state_dict': official}, src)
    checked(run(src, dst, tool=CONVERTER))
    converted = torch.load(dst, weights_only=True)
    assert converted['meta']['task'] in ('detection', 'segmentation')
    state = converted['state_dict']
    assert len(state) == len(official)
    # the layout is mmpretrain's: same filter tensor, renamed scales
    key = 'backbone.stages.2.0.gnconv.dwconv.complex_weight'
    assert torch.equal(state[key], official[key])
    assert torch.equal(state['backbone.stages.3.0.gamma2.weight'],
                       official['backbone.stages.3.0.gamma2'])
    assert torch.equal(state['backbone.stages.1.0.gnconv.projs.1.weight'],
                       official['backbone.stages.1.0.gnconv.pws.1.weight'])
    # strict: the model takes every key, and nothing is left over
    model = build_model(cfg)
    model.load_state_dict(state, strict=True)
    proc = checked(run(config, dst, '--work-dir', tmp_path / 'test',
                       tool='test.py'))
    metric = 'bbox_mAP' if cfg.default_scope == 'mmdet' else 'mIoU'
    assert metric in proc.stdout + proc.stderr
