"""tools/train.py and tools/test.py under careless use and attack: nothing
in a work dir is lost, divergence stops the run, checkpoints never run
code, and bad input gets a message that names the problem."""
import json
import re
import shutil
import subprocess

import pytest
import torch
from PIL import Image

from mmspectral.checkpoint import read_checkpoint
from checkpoint_exploits import write_exploit
from conftest import REPO
from tool_runs import (DET, SEG, assert_fails_cleanly, checked, run, snapshot,
                       write_config)

SAVE_EVERY_ITER = 'default_hooks = dict(checkpoint=dict(interval=1))\n'


@pytest.fixture(scope='module')
def seg_run(tiny_data, tmp_path_factory):
    """Config and work dir of a 2-iteration segmentation run that saved a
    checkpoint after each iteration."""
    tmp = tmp_path_factory.mktemp('seg-run')
    config = write_config(tmp, SEG, tiny_data / 'cityscapes', 2,
                          SAVE_EVERY_ITER)
    checked(run(config, '--work-dir', tmp / 'work'))
    return config, tmp / 'work'


@pytest.fixture
def seg_work(seg_run, tmp_path):
    """A copy of ``seg_run``'s work dir to run in."""
    config, work = seg_run
    copy = tmp_path / 'work'
    shutil.copytree(work, copy)
    return config, copy


def refused(proc, work, before, *needles):
    assert proc.returncode != 0, proc.stdout[-2000:]
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr[-3000:])
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert snapshot(work) == before


# -- nothing lost ---------------------------------------------------------

@pytest.mark.parametrize('other_config', [False, True])
def test_a_new_run_in_a_work_dir_with_checkpoints_is_refused(
        seg_work, tiny_data, tmp_path, other_config):
    config, work = seg_work
    if other_config:
        config = write_config(tmp_path, DET, tiny_data / 'coco', 1,
                              name='det.py')
    before = snapshot(work)
    refused(run(config, '--work-dir', work), work, before,
            'already holds checkpoints', 'iter_2.pth', '--resume')


def test_resume_with_another_configs_optimizer_is_refused(seg_work,
                                                          tmp_path):
    config, work = seg_work
    other = tmp_path / 'other.py'
    other.write_text(f"_base_ = '{config}'\n"
                     'optim_wrapper = dict(paramwise_cfg=dict('
                     '_delete_=True))\n')
    before = snapshot(work)
    refused(run(other, '--work-dir', work, '--resume'), work, before,
            'another optimizer setup', 'parameter groups')


def test_resume_with_another_configs_model_is_refused(seg_work):
    config, work = seg_work
    before = snapshot(work)
    refused(run(config, '--work-dir', work, '--resume', '--cfg-options',
                'model.backbone.arch=h-s',
                'model.decode_head.in_channels=[96,192,384,768]'),
            work, before, 'iter_2.pth does not fit the model of',
            'shape mismatches')


def test_resume_from_an_early_checkpoint_would_overwrite(seg_work):
    config, work = seg_work
    before = snapshot(work)
    refused(run(config, '--work-dir', work, '--resume', work / 'iter_1.pth'),
            work, before, 'would write over later checkpoints', 'iter_2.pth')


def test_resume_passes_over_partial_checkpoints(seg_work):
    """A full disk left an empty last_checkpoint and a partial iter_2.pth:
    --resume continues from iter_1.pth and writes iter_2.pth whole."""
    config, work = seg_work
    (work / 'last_checkpoint').write_text('')
    data = (work / 'iter_2.pth').read_bytes()
    (work / 'iter_2.pth').write_bytes(data[:len(data) // 3])
    proc = checked(run(config, '--work-dir', work, '--resume'))
    log = proc.stdout + proc.stderr
    assert 'last_checkpoint is empty' in log
    assert 'passing over' in log and 'iter_2.pth' in log
    assert read_checkpoint(str(work / 'iter_2.pth'))['meta']['iter'] == 2


def test_config_records_are_kept(seg_work):
    """A test run, or a resumed run with other options, in a training work
    dir writes its config beside its log, not over the training record."""
    config, work = seg_work
    record = work / config.name
    original = record.read_text()
    checked(run(config, work / 'iter_2.pth', '--work-dir', work,
                tool='test.py'))
    checked(run(config, '--work-dir', work, '--resume', '--cfg-options',
                'train_cfg.max_iters=3'))
    assert record.read_text() == original
    dumps = sorted(work.glob(f'*/{config.name}'))
    assert len(dumps) == 2 and 'max_iters=3' in dumps[1].read_text()


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tiny_data,
                                                             tmp_path):
    config = write_config(
        tmp_path, SEG, tiny_data / 'cityscapes', 8, SAVE_EVERY_ITER +
        'optim_wrapper = dict(optimizer=dict(lr=1e6))\nparam_scheduler = []\n')
    work = tmp_path / 'work'
    proc = run(config, '--work-dir', work)
    assert proc.returncode != 0
    assert 'error: training diverged at iteration' in proc.stderr or \
        'error: the weights became NaN or infinite' in proc.stderr, \
        proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr
    saved = sorted(work.glob('iter_*.pth'))
    assert not (work / 'iter_8.pth').exists()
    for path in saved:
        state = read_checkpoint(str(path))['state_dict']
        assert all(torch.isfinite(v).all() for v in state.values()
                   if v.is_floating_point()), path


def test_a_checkpoint_of_nan_weights_is_not_evaluated(seg_run, tmp_path):
    config, work = seg_run
    checkpoint = read_checkpoint(str(work / 'iter_2.pth'))
    weight = checkpoint['state_dict']['backbone.patch_embed.weight']
    weight[0, 0, 0, 0] = float('nan')
    torch.save(checkpoint, tmp_path / 'nan.pth')
    proc = run(config, tmp_path / 'nan.pth', '--work-dir', tmp_path / 'w',
               tool='test.py')
    assert proc.returncode != 0
    assert 'NaN or infinite weights' in proc.stderr
    assert 'backbone.patch_embed.weight' in proc.stderr


# -- checkpoints never run code ------------------------------------------

@pytest.mark.parametrize('entry', ['test', 'resume', 'load_from'])
def test_tools_refuse_a_checkpoint_that_runs_code(seg_run, tmp_path, entry):
    config, _ = seg_run
    marker = tmp_path / 'ran'
    evil = write_exploit(tmp_path / 'evil.pth', marker)
    work = tmp_path / 'w'
    args = {'test': (config, evil, '--work-dir', work),
            'resume': (config, '--work-dir', work, '--resume', evil),
            'load_from': (config, '--work-dir', work, '--cfg-options',
                          f'load_from={evil}')}[entry]
    proc = run(*args, tool='test.py' if entry == 'test' else 'train.py')
    assert proc.returncode != 0
    assert 'was refused' in proc.stderr, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr
    assert not marker.exists()
    assert not work.exists()


# -- clear errors -----------------------------------------------------------

def test_config_syntax_error_names_the_file(tmp_path, work_dir):
    config = tmp_path / 'broken.py'
    config.write_text("model = dict(type='EncoderDecoder'\n")
    assert_fails_cleanly(run(config, '--work-dir', work_dir), work_dir,
                         'config', 'broken.py', 'cannot be read')


def test_unknown_type_suggests_close_names(seg_run, work_dir):
    config, _ = seg_run
    assert_fails_cleanly(
        run(config, '--work-dir', work_dir, '--cfg-options',
            'model.decode_head.type=SegformerHeadd'), work_dir,
        "model.decode_head: unknown type 'SegformerHeadd'", "'SegformerHead'")


def test_batch_size_zero_is_refused(seg_run, work_dir):
    config, _ = seg_run
    assert_fails_cleanly(
        run(config, '--work-dir', work_dir, '--cfg-options',
            'train_dataloader.batch_size=0'), work_dir,
        'train_dataloader.batch_size must be an int >= 1, got 0')


def test_truncated_pretrained_checkpoint_is_named(seg_run, tmp_path,
                                                  work_dir):
    config, work = seg_run
    data = (work / 'iter_2.pth').read_bytes()
    (tmp_path / 'half.pth').write_bytes(data[:len(data) // 2])
    pretrained = tmp_path / 'pretrained.py'
    pretrained.write_text(
        f"_base_ = '{config}'\n"
        'model = dict(backbone=dict(init_cfg=dict(_delete_=True, '
        f"type='Pretrained', checkpoint='{tmp_path / 'half.pth'}', "
        "prefix='backbone.')))\n")
    assert_fails_cleanly(
        run(pretrained, '--work-dir', work_dir), work_dir,
        'half.pth is not a readable PyTorch checkpoint')


def copy_data(tiny_data, tmp_path, subset):
    data = tmp_path / subset
    shutil.copytree(tiny_data / subset, data)
    return data


def test_corrupt_annotation_json_is_named(tiny_data, tmp_path, work_dir):
    data = copy_data(tiny_data, tmp_path, 'coco')
    ann = data / 'annotations' / 'instances_train2017.json'
    ann.write_text(ann.read_text()[:-40])
    config = write_config(tmp_path, DET, data, 1)
    assert_fails_cleanly(run(config, '--work-dir', work_dir), work_dir,
                         str(ann), 'is not valid JSON')


@pytest.mark.parametrize('workers', [0, 1])
def test_zero_byte_image_is_named(tiny_data, tmp_path, workers):
    data = copy_data(tiny_data, tmp_path, 'coco')
    image = sorted((data / 'train2017').glob('*.jpg'))[0]
    image.write_bytes(b'')
    config = write_config(
        tmp_path, DET, data, 1,
        f"train_dataloader['num_workers'] = {workers}\n"
        "train_dataloader['sampler'] = dict(type='DefaultSampler', "
        'shuffle=False)\n')
    proc = run(config, '--work-dir', tmp_path / 'work')
    assert proc.returncode != 0
    assert f'{image} is empty (0 bytes)' in proc.stderr, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr


def test_dataset_with_every_image_filtered_out(tiny_data, tmp_path):
    data = copy_data(tiny_data, tmp_path, 'coco')
    config = write_config(
        tmp_path, DET, data, 1,
        "train_dataloader['dataset']['filter_cfg'] = dict("
        'filter_empty_gt=True, min_size=100000)\n')
    proc = run(config, '--work-dir', tmp_path / 'work')
    assert proc.returncode != 0
    assert f"the dataset (CocoDataset, {data}/annotations/" in proc.stderr
    assert 'has no samples' in proc.stderr and 'min_size' in proc.stderr
    assert 'Traceback' not in proc.stderr


def relabel(data, split, value, corner=True):
    """Write ``value`` into a corner (else all) of every label map of
    ``split``."""
    labels = sorted((data / 'gtFine' / split).rglob('*_labelTrainIds.png'))
    for path in labels:
        label = Image.open(path)
        label.paste(value, (0, 0, 8, 8) if corner else (0, 0, *label.size))
        label.save(path)
    return labels


def test_out_of_range_labels_stop_training(tiny_data, tmp_path):
    data = copy_data(tiny_data, tmp_path, 'cityscapes')
    relabel(data, 'train', 33, corner=False)  # whatever the random crop
    config = write_config(tmp_path, SEG, data, 1)
    proc = run(config, '--work-dir', tmp_path / 'work')
    assert proc.returncode != 0
    assert 'pixels with label ids [33] outside 0..18' in proc.stderr
    assert '_labelTrainIds.png' in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_out_of_range_labels_are_counted_in_evaluation(seg_run, tiny_data,
                                                       tmp_path):
    config, work = seg_run
    data = copy_data(tiny_data, tmp_path, 'cityscapes')
    labels = relabel(data, 'val', 40)
    evaluation = tmp_path / 'eval.py'
    evaluation.write_text(
        f"_base_ = '{config}'\n"
        f"test_dataloader = dict(dataset=dict(data_root='{data}/'))\n")
    proc = checked(run(evaluation, work / 'iter_2.pth', '--work-dir',
                       tmp_path / 'w', tool='test.py'))
    log = proc.stdout + proc.stderr
    assert 'mIoU' in log
    for path in labels:
        assert f'{path}: 64 pixels with label ids [40]' in log
    assert f'128 label pixels in {len(labels)} files' in log


def test_test_outputs_are_checked_before_evaluating(seg_run, tmp_path):
    config, work = seg_run
    ckpt = work / 'iter_2.pth'
    proc = run(config, ckpt, '--work-dir', tmp_path / 'w', '--dump-metrics',
               tmp_path / 'missing' / 'm.json', tool='test.py')
    assert proc.returncode != 0
    assert f'the folder {tmp_path / "missing"} does not exist' in proc.stderr
    assert 'mIoU' not in proc.stdout + proc.stderr
    earlier = tmp_path / 'metrics.json'
    earlier.write_text(json.dumps({'mIoU': 1.0}))
    proc = run(config, ckpt, '--work-dir', tmp_path / 'w', '--dump-metrics',
               earlier, tool='test.py')
    assert proc.returncode != 0 and 'exists' in proc.stderr
    assert json.loads(earlier.read_text()) == {'mIoU': 1.0}


# -- resuming what cannot be resumed (tools/train.py in this process) ------

def tool_error(main, *args) -> str:
    """The ``error: ...`` a tool's ``main`` exits with."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return str(exc.value.code)


def edited(path, target, edit):
    checkpoint = read_checkpoint(str(path))
    edit(checkpoint)
    torch.save(checkpoint, target)
    return target


@pytest.mark.parametrize('edit, message', [
    (lambda c: c['meta'].update(iter=10**9), 'is at iter 1000000000, and '
     'the schedule ends at max_iters=2: the run is complete'),
    (lambda c: c['meta'].update(iter=-3), "meta['iter'] is -3, not a count"),
    (lambda c: c['meta'].update(iter=1e9), "meta['iter'] is 1000000000.0"),
    (lambda c: c.pop('optimizer'), 'lacks optimizer'),
    (lambda c: c['rng_state'].update(numpy=('MT19937', [1, 2], 0, 0, 0.)),
     "rng_state['numpy'] cannot be restored"),
])
def test_resume_refuses_what_cannot_be_right(seg_work, tmp_path, edit,
                                             message):
    from mmspectral.cli import train
    config, work = seg_work
    start = edited(work / 'iter_1.pth', tmp_path / 'start.pth', edit)
    (work / 'iter_2.pth').unlink()
    before = snapshot(work)
    error = tool_error(train.main, config, '--work-dir', work, '--resume',
                       start)
    assert message in error and str(start) in error
    assert snapshot(work) == before


def test_resume_of_weights_only_or_a_folder_is_refused(seg_work, tmp_path):
    from mmspectral.cli import train
    config, work = seg_work
    weights = edited(
        work / 'iter_2.pth', tmp_path / 'weights.pth',
        lambda c: [c.pop(k) for k in list(c) if k != 'state_dict'])
    torch.save(read_checkpoint(str(weights))['state_dict'], weights)
    error = tool_error(train.main, config, '--work-dir', tmp_path / 'w',
                       '--resume', weights)
    assert 'holds weights only' in error and 'load_from' in error
    error = tool_error(train.main, config, '--work-dir', tmp_path / 'w',
                       '--resume', work)
    assert f'--resume {work} is a folder' in error
    assert not (tmp_path / 'w').exists()


def test_resume_at_the_end_of_the_schedule_says_so(seg_work):
    """... and a save a killed run left half-written is cleared away."""
    from mmspectral.cli import train
    config, work = seg_work
    (work / '.iter_3.pth.4242.tmp').write_bytes(b'half a save')
    error = tool_error(train.main, config, '--work-dir', work, '--resume')
    assert 'iter_2.pth is at iter 2, and the schedule ends at max_iters=2' \
        in error and 'raise train_cfg.max_iters' in error
    assert not (work / '.iter_3.pth.4242.tmp').exists()


def test_a_shared_checkpoint_out_dir_is_guarded(seg_run, tmp_path):
    """Two work dirs of one name under one ``out_dir``: mmengine writes both
    runs' checkpoints to ``out_dir/<name>``, so the second is refused."""
    from mmspectral.cli import train
    config, work = seg_run
    out = tmp_path / 'out'
    shutil.copytree(work, out / 'run', ignore=shutil.ignore_patterns('2*'))
    second = tmp_path / 'b' / 'run'
    error = tool_error(train.main, config, '--work-dir', second,
                       '--cfg-options',
                       f'default_hooks.checkpoint.out_dir={out}')
    assert f'{out / "run"} (the checkpoint folder of {second}) already ' \
        'holds checkpoints' in error
    assert not second.exists()


def test_config_mistakes_are_refused_before_anything(seg_run, tmp_path):
    from mmspectral.cli import test, train
    config, work = seg_run
    w = tmp_path / 'w'
    error = tool_error(train.main, config, '--work-dir', w, '--cfg-options',
                       'trian_cfg.max_iters=2')
    assert "'trian_cfg' is not a top-level key" in error
    assert "did you mean 'train_cfg'" in error
    error = tool_error(train.main, config, '--work-dir', w, '--cfg-options',
                       'model.backbone.drop_path_rate=2.0')
    assert 'model.backbone.drop_path_rate must be a probability' in error
    error = tool_error(train.main, config, '--work-dir', w, '--cfg-options',
                       'optim_wrapper.optimizer.lr=inf')
    assert 'lr must be a finite number' in error
    same = tmp_path / 'same.json'
    error = tool_error(test.main, config, work / 'iter_2.pth', '--work-dir',
                       w, '--out', tmp_path / 'same.pkl', '--dump-metrics',
                       same, '--show-dir', same)
    assert '--dump-metrics and --show-dir name the same file' in error
    assert not w.exists()


def test_a_launcher_against_the_environment_is_refused(seg_run, tmp_path,
                                                       monkeypatch):
    """``dist_train.sh CONFIG 2 --launcher none`` gives two processes with
    WORLD_SIZE=2 and --launcher none: each would train alone."""
    from mmspectral.cli import train
    config, _ = seg_run
    monkeypatch.setenv('WORLD_SIZE', '2')
    monkeypatch.setenv('RANK', '1')
    error = tool_error(train.main, config, '--work-dir', tmp_path / 'w',
                       '--launcher', 'none')
    assert 'started as one of 2' in error
    monkeypatch.delenv('WORLD_SIZE')
    error = tool_error(train.main, config, '--work-dir', tmp_path / 'w',
                       '--launcher', 'slurm')
    assert '--launcher slurm outside a slurm job step' in error
    proc = subprocess.run(['bash', str(REPO / 'tools' / 'dist_train.sh'),
                           str(config), '0'], capture_output=True, text=True)
    assert proc.returncode == 2 and 'NPROC' in proc.stderr
    assert not (tmp_path / 'w').exists()


def test_huge_finite_weights_stop_the_test_with_the_checkpoint(
        seg_run, tmp_path):
    """3e38 weights are finite, so the checkpoint loads; the logits they
    give are not, and no metric is reported for them."""
    from mmspectral.cli import test
    config, work = seg_run

    def overflow(checkpoint):
        checkpoint['state_dict']['decode_head.conv_seg.weight'].fill_(3e38)

    huge = edited(work / 'iter_2.pth', tmp_path / 'huge.pth', overflow)
    metrics = tmp_path / 'metrics.json'
    error = tool_error(test.main, config, huge, '--work-dir', tmp_path / 'w',
                       '--dump-metrics', metrics)
    assert 'predicts NaN or infinite values (seg_logits' in error
    assert str(huge) in error
    assert not metrics.exists()


def test_nan_boxes_in_coco_annotations_are_named(tiny_data, tmp_path):
    from mmspectral.cli import train
    data = copy_data(tiny_data, tmp_path, 'coco')
    ann = data / 'annotations' / 'instances_train2017.json'
    content = json.loads(ann.read_text())
    content['annotations'][1]['bbox'][2] = float('nan')
    content['annotations'][2]['segmentation'][0][3] = float('nan')
    ann.write_text(json.dumps(content))
    config = write_config(tmp_path, DET, data, 1)
    error = tool_error(train.main, config, '--work-dir', tmp_path / 'w')
    ids = [content['annotations'][i]['id'] for i in (1, 2)]
    assert f'{ann}: 2 annotation(s) with a NaN, infinite or non-numeric ' \
        f'box or polygon (ids {ids[0]}, {ids[1]}' in error


def test_a_label_map_of_another_size_is_named(tiny_data, tmp_path):
    from mmspectral.cli import train
    data = copy_data(tiny_data, tmp_path, 'cityscapes')
    for label in (data / 'gtFine' / 'train').rglob('*_labelTrainIds.png'):
        image = Image.open(label)
        image.resize((image.width // 2, image.height)).save(label)
    config = write_config(tmp_path, SEG, data, 1)
    error = tool_error(train.main, config, '--work-dir', tmp_path / 'w')
    found = re.search(r'the label map (\S+) is (\d+)x(\d+), its image (\S+) '
                      r'(\d+)x(\d+)', error)
    assert found, error
    label, height, width, image, image_height, image_width = found.groups()
    assert label.endswith('_labelTrainIds.png') and image.endswith(
        '_leftImg8bit.png')
    assert (height, 2 * int(width)) == (image_height, int(image_width))
