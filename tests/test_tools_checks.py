"""The checks of the tools before and around a run, one rule at a time
(tests/test_tools_safety.py runs them through the tools)."""
import argparse

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmspectral.checkpoint import CheckpointError
from mmspectral.cli import (ConfigError, DictAction, check_distinct_outputs,
                            check_launcher, check_rates,
                            check_resume_checkpoint, is_main_process)
from mmspectral.cli.checkpoints import schedule_end
from mmspectral.cli.checks import check_coco_annotations
from mmspectral.cli.data_checks import (NameSampleOnFailure,
                                        name_failing_samples)
from mmspectral.cli.run_setup import check_option_keys
from mmspectral.engine import DataError

# -- --cfg-options ------------------------------------------------------------


def test_an_unknown_top_level_option_is_refused_with_the_closest():
    cfg = Config(dict(train_cfg=dict(max_iters=200), model=dict()))
    with pytest.raises(ConfigError, match="'trian_cfg' is not a top-level "
                       ".*did you mean 'train_cfg'"):
        check_option_keys(cfg, {'trian_cfg.max_iters': 2})
    # the config's keys and the Runner's arguments are all known
    check_option_keys(cfg, {'train_cfg.max_iters': 2, 'load_from': 'x.pth',
                            'randomness.seed': 0, 'work_dir': 'w',
                            'model_wrapper_cfg.type': 'X'})


def test_an_option_without_a_value_is_a_usage_error(capsys):
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    assert parser.parse_args(['--cfg-options', 'a.b=1']).cfg_options == \
        {'a.b': 1}
    with pytest.raises(SystemExit) as err:
        parser.parse_args(['--cfg-options', 'train_cfg.max_iters'])
    assert err.value.code == 2
    assert "'train_cfg.max_iters' is not KEY=VALUE" in capsys.readouterr().err


# -- the config ---------------------------------------------------------------


def test_rates_must_be_probabilities_and_the_lr_finite():
    model = dict(backbone=dict(drop_path_rate=0.1, drop_rate=None),
                 decode_head=dict(dropout_ratio=0.1))
    check_rates(Config(dict(model=model, optim_wrapper=dict(
        optimizer=dict(lr=0.)))))
    model['backbone']['drop_path_rate'] = 2.0
    with pytest.raises(ConfigError, match=r'model.backbone.drop_path_rate '
                       r'must be a probability in \[0, 1\), got 2.0'):
        check_rates(Config(dict(model=model)))
    for lr in (float('inf'), float('nan'), -1e-3):
        with pytest.raises(ConfigError, match='optimizer.lr must be a finite'):
            check_rates(Config(dict(model={}, optim_wrapper=dict(
                optimizer=dict(lr=lr)))))


def box(ann_id, bbox, polygon=None):
    return dict(id=ann_id, bbox=bbox, segmentation=[polygon or [
        0, 0, 4, 0, 4, 4]])


def test_coco_annotations_that_cannot_be_right_are_counted_and_named(
        capsys):
    nan = float('nan')
    good = [box(1, [0, 0, 4, 4]), dict(id=9, bbox=[1, 1, 2, 2],
                                       segmentation=dict(counts='x'))]
    check_coco_annotations(good, 'a.json')
    with pytest.raises(ConfigError) as err:
        check_coco_annotations(good + [box(2, [nan, 0, 4, 4]),
                                       box(3, [0, 0, 4, 4], [0, nan, 1]),
                                       box(4, [0, 0, 'x', 4])], 'a.json')
    assert 'a.json: 3 annotation(s) with a NaN' in str(err.value)
    assert 'ids 2, 3, 4' in str(err.value)
    # a logger of this test's own: its handler writes to the captured stdout
    from mmengine.logging import MMLogger
    MMLogger.get_instance('test_coco_annotations')
    check_coco_annotations(good + [box(5, [0, 0, 0, 4]),
                                   box(6, [0, 0, 3, -2])], 'a.json')
    assert '2 box(es) of zero or negative width or height (ids 5, 6)' in \
        capsys.readouterr().out


def test_a_label_map_of_another_size_is_refused():
    def load(results):
        results.update(img=np.zeros((8, 16, 3)), ori_shape=(8, 16))
        return results

    def load_label(results):
        results['gt_seg_map'] = np.zeros((8, 12), np.uint8)
        return results

    pipeline = NameSampleOnFailure([load, load_label])
    with pytest.raises(DataError, match='the label map b.png is 8x12, its '
                       'image a.png 8x16'):
        pipeline(dict(img_path='a.png', seg_map_path='b.png'))


def test_pipelines_are_wrapped_once():
    cfg = Config(dict(train_dataloader=dict(dataset=dict(
        type='ConcatDataset', datasets=[
            dict(type='A', pipeline=[dict(type='LoadImageFromFile')]),
            dict(type='B', pipeline=[dict(type='LoadImageFromFile')])]))))
    for _ in range(2):
        name_failing_samples(cfg, ['train', 'val'])
    for dataset in cfg.train_dataloader.dataset.datasets:
        assert dataset.pipeline == [dict(
            type='mmspectral.NameSampleOnFailure',
            transforms=[dict(type='LoadImageFromFile')])]


# -- outputs and the launch ---------------------------------------------------


def test_two_outputs_may_not_be_one_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    check_distinct_outputs(out='a.pkl', dump_metrics='a.json', show_dir=None)
    with pytest.raises(ValueError, match='--out and --dump-metrics name the '
                       'same file'):
        check_distinct_outputs(out='x', dump_metrics=str(tmp_path / 'x'))


def test_a_launcher_that_contradicts_the_environment_is_refused():
    torchrun = dict(RANK='1', WORLD_SIZE='2', LOCAL_RANK='1',
                    MASTER_ADDR='127.0.0.1', MASTER_PORT='29500')
    check_launcher('pytorch', torchrun)
    check_launcher('none', {})
    check_launcher('none', dict(WORLD_SIZE='1'))
    with pytest.raises(ValueError, match='--launcher none in a process '
                       'started as one of 2'):
        check_launcher('none', torchrun)
    with pytest.raises(ValueError, match='--launcher slurm outside a slurm '
                       'job step'):
        check_launcher('slurm', torchrun)
    check_launcher('slurm', dict(SLURM_PROCID='0', SLURM_NTASKS='1',
                                 SLURM_NODELIST='node1'))
    with pytest.raises(ValueError, match="--launcher pytorch without "
                       "torchrun's environment"):
        check_launcher('pytorch', {})


def test_a_run_without_launcher_is_its_own_main_process(monkeypatch):
    monkeypatch.setenv('RANK', '1')
    assert is_main_process('none')
    assert not is_main_process('pytorch')


# -- resuming -----------------------------------------------------------------


def resumable(model, **meta):
    return dict(state_dict=model.state_dict(), message_hub={},
                optimizer=dict(state={}, param_groups=[]),
                meta=dict(dict(epoch=0, iter=3), **meta))


@pytest.mark.parametrize('train_cfg, end', [
    (dict(type='IterBasedTrainLoop', max_iters=10), ('iter', 10)),
    (dict(by_epoch=False, max_iters=10), ('iter', 10)),
    (dict(type='EpochBasedTrainLoop', max_epochs=12), ('epoch', 12)),
    (dict(by_epoch=True, max_epochs=12), ('epoch', 12)),
])
def test_schedule_end(train_cfg, end):
    assert schedule_end(Config(dict(train_cfg=train_cfg))) == end


def test_what_cannot_be_resumed_is_refused():
    model = torch.nn.Linear(2, 2)
    cfg = Config(dict(train_cfg=dict(type='IterBasedTrainLoop',
                                     max_iters=10)))
    assert check_resume_checkpoint(model, 'c.pth', cfg, 'm',
                                   resumable(model))['meta']['iter'] == 3
    cases = [
        (resumable(model, iter=10**9), 'at iter 1000000000, and the '
         'schedule ends at max_iters=10: the run is complete'),
        (resumable(model, iter=10), 'at iter 10'),
        (resumable(model, iter=-5), r"meta\['iter'\] is -5, not a count"),
        (resumable(model, iter=1e9), r"meta\['iter'\] is 1000000000.0"),
        (dict(state_dict=model.state_dict()), 'lacks meta and message_hub '
         'and optimizer'),
        ({'weight': model.weight}, 'holds weights only'),
        (dict(resumable(model), rng_state=dict(torch=torch.zeros(3))),
         r"rng_state\['torch'\] cannot be restored"),
    ]
    for checkpoint, message in cases:
        with pytest.raises(CheckpointError, match=message):
            check_resume_checkpoint(model, 'c.pth', cfg, 'm', checkpoint)


@pytest.mark.parametrize('nproc', ['0', '-2', 'two', ''])
def test_dist_scripts_refuse_a_process_count_below_one(nproc):
    import subprocess

    from conftest import REPO
    for args in (['dist_train.sh', 'CONFIG', nproc],
                 ['dist_test.sh', 'CONFIG', 'CKPT', nproc]):
        proc = subprocess.run(['bash', str(REPO / 'tools' / args[0]),
                               *args[1:]], capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert f"got '{nproc}'" in proc.stderr
