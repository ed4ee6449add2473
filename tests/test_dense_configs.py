"""Every dense-prediction config trains one iteration and evaluates on the
tiny data (the dataset is swapped, the model is the config's); a multi-scale
3x config, which differs from its 1x twin only in what the swap replaces, is
shown to run exactly as that twin instead."""
import pickle

import pytest
from mmengine.config import Config
from published_cases import PUBLISHED, shrink

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


def test_every_published_setting_has_a_config():
    """HorNet T/S/B/L, 7x7 and GF: Cascade Mask R-CNN 3x and UperNet 160k;
    GFNet-H Semantic FPN on ADE20K."""
    names = {p.name for p in CONFIGS}
    for arch in ('t', 's', 'b', 'l'):
        for gf in ('', '-gf'):
            crop = 640 if arch == 'l' else 512
            assert (f'cascade-mask-rcnn_hornet-{arch}{gf}_fpn_4conv1fc-giou_'
                    'amp-ms-crop-3x_coco.py') in names
            assert (f'upernet_hornet-{arch}{gf}_8xb2-amp-160k_ade20k-'
                    f'{crop}x{crop}.py') in names
    for arch in ('h-ti', 'h-s', 'h-b'):
        assert f'fpn_gfnet-{arch}_8xb2-40k_ade20k-512x512.py' in names


# the published settings differ only in the backbone's size and a few
# scalars: they run shrunk to a few channels; the largest of the others
# is a Mask R-CNN with GFNet-H-Ti
@pytest.mark.timeout(300)
@pytest.mark.parametrize('path', [p for p in CONFIGS if p not in TWINS],
                         ids=lambda p: p.stem)
def test_config_trains_and_evaluates(path, tiny_data, tmp_path):
    cfg = Config.fromfile(path)
    if path in PUBLISHED:
        cfg = shrink(cfg)
    cfg = short_run(cfg, tiny_data, tmp_path)
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
