"""Every dense-prediction config trains one iteration and evaluates on the
tiny data (the dataset is swapped, the model is the config's); a multi-scale
3x config, which differs from its 1x twin only in what the swap replaces, is
shown to run exactly as that twin instead."""
import pickle

import pytest
from mmengine.config import Config

from mmspectral.cli import add_prediction_dump, build_runner
from conftest import REPO
from tool_modules import short_run

CONFIGS = sorted(
    p for family in ('gfnet', 'afno', 'hornet', 'spectformer')
    for p in (REPO / 'configs' / family).glob('*.py')
    if not p.name.endswith('_in1k.py'))


def test_configs_cover_every_arch_and_algorithm():
    names = {p.name for p in CONFIGS}
    assert {'segformer_afno-mit-b0_8xb1-160k_cityscapes-1024x1024.py',
            'segformer_afno-mit-b3_8xb1-160k_cityscapes-1024x1024.py',
            'mask-rcnn_afno-ti_fpn_1x_coco.py',
            'retinanet_afno-ti_fpn_1x_coco.py'} <= names
    for arch in ('h-ti', 'h-s', 'h-b', 'xs'):
        for pattern in ('mask-rcnn_gfnet-{}_fpn_1x_coco.py',
                        'mask-rcnn_gfnet-{}_fpn_ms-3x_coco.py',
                        'retinanet_gfnet-{}_fpn_1x_coco.py',
                        'segformer_gfnet-{}_8xb1-160k_'
                        'cityscapes-1024x1024.py'):
            assert pattern.format(arch) in names
    for name in ('mask-rcnn_hornet-t-gf_fpn_1x_coco.py',
                 'retinanet_hornet-t-gf_fpn_1x_coco.py',
                 'segformer_hornet-t-gf_8xb1-160k_cityscapes-1024x1024.py',
                 'cascade-mask-rcnn_hornet-t-gf_fpn_4conv1fc-giou_amp-ms-'
                 'crop-3x_coco.py',
                 'upernet_hornet-t-gf_8xb2-amp-160k_ade20k-512x512.py',
                 'mask-rcnn_spectformer-h-s_fpn_1x_coco.py',
                 'mask-rcnn_spectformer-xs_fpn_1x_coco.py',
                 'retinanet_spectformer-h-s_fpn_1x_coco.py',
                 'segformer_spectformer-h-s_8xb1-160k_cityscapes-'
                 '1024x1024.py'):
        assert name in names


def one_x_twin(path):
    """The 1x config of a multi-scale 3x one: they differ in the data
    pipeline and the schedule only, both of which the tiny run replaces."""
    twin = path.with_name(path.name.replace('_ms-3x_', '_1x_'))
    return twin if twin != path and twin.exists() else None


TWINS = [p for p in CONFIGS if one_x_twin(p)]


@pytest.mark.parametrize('path', TWINS, ids=lambda p: p.stem)
def test_3x_config_runs_as_its_1x_twin(path, tiny_data, tmp_path):
    ours, twin = (short_run(Config.fromfile(p), tiny_data, tmp_path).to_dict()
                  for p in (path, one_x_twin(path)))
    assert {k for k in set(ours) | set(twin) if ours.get(k) != twin.get(k)
            } == {'max_epochs', 'train_pipeline'}


# the largest (Cascade Mask R-CNN with HorNet-T-GF) takes about 70 s on 2
# busy cores
@pytest.mark.timeout(300)
@pytest.mark.parametrize('path', [p for p in CONFIGS if p not in TWINS],
                         ids=lambda p: p.stem)
def test_config_trains_and_evaluates(path, tiny_data, tmp_path):
    cfg = short_run(Config.fromfile(path), tiny_data, tmp_path)
    # no parameter may be left without a gradient (DDP would stop)
    cfg.find_unused_parameters = False
    dump = str(tmp_path / 'predictions.pkl')
    add_prediction_dump(cfg, dump)
    runner = build_runner(cfg)
    trained = set()
    for name, param in runner.model.named_parameters():
        param.register_hook(lambda grad, name=name: trained.add(name))
    runner.train()
    unused = [
        name for name, p in runner.model.named_parameters()
        if p.requires_grad and name not in trained
    ]
    assert not unused, unused
    assert (tmp_path / 'iter_1.pth').is_file()
    metrics = runner.test()
    with open(dump, 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == len(runner.test_dataloader.dataset)
    if cfg.default_scope == 'mmseg':
        assert {'mIoU', 'mAcc', 'aAcc'} <= set(metrics)
