"""tools/train.py, tools/test.py and tools/dist_train.sh as a user runs
them, on the tiny data."""
import os
import pickle
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from mmspectral.checkpoint import read_checkpoint
from conftest import REPO
from tool_runs import (DET, HELPERS, SEG, assert_fails_cleanly, checked, run,
                       write_config)


@pytest.fixture(scope='module')
def trained_seg(tiny_data, tmp_path_factory):
    """A segmentation model trained 2 iterations with tools/train.py."""
    tmp = tmp_path_factory.mktemp('seg')
    config = write_config(tmp, SEG, tiny_data / 'cityscapes', 2)
    proc = checked(run(config, '--work-dir', tmp / 'work'))
    assert 'Iter(train) [2/2]' in proc.stdout + proc.stderr
    return config, tmp / 'work' / 'iter_2.pth'


def test_test_tool_reports_and_writes(trained_seg, tmp_path):
    config, ckpt = trained_seg
    out, metrics = tmp_path / 'pred.pkl', tmp_path / 'metrics.json'
    proc = checked(run(config, ckpt, '--work-dir', tmp_path / 'w', '--out',
                       out, '--show-dir', tmp_path / 'show',
                       '--dump-metrics', metrics, tool='test.py'))
    log = proc.stdout + proc.stderr
    assert 'per class results' in log and 'mIoU' in log
    assert {'mIoU', 'mAcc', 'aAcc'} <= set(
        __import__('json').loads(metrics.read_text()))
    with open(out, 'rb') as f:
        assert len(pickle.load(f)) == 2  # two val images
    assert len(list((tmp_path / 'show').rglob('*.png'))) == 2


def test_detection_show_dir(tiny_data, tmp_path):
    config = write_config(tmp_path, DET, tiny_data / 'coco', 1)
    checked(run(config, '--work-dir', tmp_path / 'work'))
    checked(run(config, tmp_path / 'work' / 'iter_1.pth', '--show-dir',
                tmp_path / 'show', '--work-dir', tmp_path / 'work',
                tool='test.py'))
    drawn = list((tmp_path / 'show').glob('*.jpg'))
    assert len(drawn) == 4  # every val image


def test_resume_after_kill_is_exact(tiny_data, tmp_path):
    """Killed after iteration 4 with a checkpoint at 3, then --resume: the
    final weights equal those of an uninterrupted run."""
    data = tiny_data / 'cityscapes'
    extra = ("custom_imports = dict(imports=['mmspectral', 'run_hooks'], "
             'allow_failed_imports=False)\n'
             'randomness = dict(seed=0, deterministic=True)\n'
             'default_hooks = dict(checkpoint=dict(interval=3))\n')
    env = dict(PYTHONPATH=str(HELPERS))
    plain = write_config(tmp_path, SEG, data, 6, extra, 'plain.py')
    checked(run(plain, '--work-dir', tmp_path / 'a', env=env))

    killed = write_config(
        tmp_path, SEG, data, 6, extra +
        "custom_hooks = [dict(type='KillAtIterHook', iteration=4)]\n",
        'killed.py')
    work = tmp_path / 'b'
    proc = run(killed, '--work-dir', work, env=env)
    assert proc.returncode != 0
    assert (work / 'iter_3.pth').is_file()
    assert not (work / 'iter_6.pth').exists()
    checked(run(plain, '--work-dir', work, '--resume', env=env))

    expected = read_checkpoint(str(tmp_path / 'a' / 'iter_6.pth'))
    resumed = read_checkpoint(str(work / 'iter_6.pth'))
    assert resumed['meta']['iter'] == 6
    for key, value in expected['state_dict'].items():
        assert torch.equal(value, resumed['state_dict'][key]), key


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_two_cpu_processes_end_with_identical_weights(tiny_data, tmp_path):
    out = tmp_path / 'ranks'
    out.mkdir()
    config = write_config(
        tmp_path, SEG, tiny_data / 'cityscapes', 3,
        "custom_imports = dict(imports=['mmspectral', 'run_hooks'], "
        'allow_failed_imports=False)\n'
        f"custom_hooks = [dict(type='DumpRankWeightsHook', out_dir='{out}')]"
        '\n')
    proc = subprocess.run(
        ['bash', str(REPO / 'tools' / 'dist_train.sh'), str(config), '2',
         '--work-dir', str(tmp_path / 'work')],
        capture_output=True, text=True, cwd=REPO,
        env=dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()),
                 PYTHONPATH=str(HELPERS)))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert 'Distributed training: True' in proc.stdout + proc.stderr
    rank0 = read_checkpoint(str(out / 'rank0.pth'))
    rank1 = read_checkpoint(str(out / 'rank1.pth'))
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key


# ---- bad input: a clear message, and nothing in the work dir changes ----

def test_missing_data_root(tmp_path, work_dir):
    config = write_config(tmp_path, SEG, tmp_path / 'nowhere', 1)
    assert_fails_cleanly(run(config, '--work-dir', work_dir), work_dir,
                         'data root', 'nowhere', 'make_tiny_data.py')


def test_missing_annotation_file(tiny_data, tmp_path, work_dir):
    data = tmp_path / 'coco'
    shutil.copytree(tiny_data / 'coco', data)
    (data / 'annotations' / 'instances_train2017.json').unlink()
    config = write_config(tmp_path, DET, data, 1)
    assert_fails_cleanly(run(config, '--work-dir', work_dir), work_dir,
                         'annotation file', 'instances_train2017.json')


def test_unknown_arch(tiny_data, tmp_path, work_dir):
    config = write_config(tmp_path, SEG, tiny_data / 'cityscapes', 1)
    assert_fails_cleanly(
        run(config, '--work-dir', work_dir, '--cfg-options',
            'model.backbone.arch=h-xxl'), work_dir,
        "Unknown GFNetH arch 'h-xxl'", "'h-ti'")


def test_checkpoint_of_another_arch(trained_seg, tmp_path, work_dir):
    config, ckpt = trained_seg
    proc = run(config, ckpt, '--work-dir', work_dir, '--cfg-options',
               'model.backbone.arch=h-s',
               'model.decode_head.in_channels=[96,192,384,768]',
               tool='test.py')
    assert_fails_cleanly(proc, work_dir, 'does not fit',
                         'shape mismatches', 'backbone.')


def test_pretrained_checkpoint_of_another_arch(tiny_data, tmp_path,
                                               work_dir):
    from mmspectral.models import GFNetH
    ckpt = tmp_path / 'gfnet-h-s.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in GFNetH(
        'h-s').state_dict().items()}}, ckpt)
    for path, needles in (
            (ckpt, ["does not fit this GFNetH arch 'h-ti'"]),
            (tmp_path / 'missing.pth', ['missing.pth',
                                        'gfnet2mmspectral.py'])):
        config = write_config(
            tmp_path, SEG, tiny_data / 'cityscapes', 1,
            "model = dict(backbone=dict(init_cfg=dict(_delete_=True, "
            "type='Pretrained', "
            f"checkpoint='{path}', prefix='backbone.')))\n")
        proc = run(config, '--work-dir', work_dir)
        assert proc.returncode != 0
        for needle in needles:
            assert needle in proc.stderr, proc.stderr[-3000:]
        assert 'Traceback' not in proc.stderr


def test_corrupt_image_is_named(tiny_data, tmp_path):
    data = tmp_path / 'coco'
    shutil.copytree(tiny_data / 'coco', data)
    for image in (data / 'train2017').glob('*.jpg'):
        image.write_bytes(b'this is not a jpeg')
    config = write_config(tmp_path, DET, data, 1)
    proc = run(config, '--work-dir', tmp_path / 'work')
    assert proc.returncode != 0
    assert 'LoadImageFromFile failed on' in proc.stderr
    assert 'failed to load image' in proc.stderr
    assert str(data / 'train2017') in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_grayscale_images_train(tiny_data, tmp_path):
    """Single-channel images are read as 3-channel, as mmdet does."""
    data = tmp_path / 'coco'
    shutil.copytree(tiny_data / 'coco', data)
    for image in (data / 'train2017').glob('*.jpg'):
        Image.open(image).convert('L').save(image)
    assert np.asarray(Image.open(next((data / 'train2017').glob(
        '*.jpg')))).ndim == 2
    config = write_config(tmp_path, DET, data, 1)
    checked(run(config, '--work-dir', tmp_path / 'work'))


def test_classification_test_tool(tiny_data, tmp_path):
    """tools/test.py on an mmpretrain config: top-k accuracy and drawn
    predictions, on an ImageNet-style folder cut from the tiny images."""
    from mmengine.config import Config
    from pycocotools.coco import COCO

    from mmspectral.cli import build_model
    coco = COCO(str(tiny_data / 'coco/annotations/instances_val2017.json'))
    for ann in coco.dataset['annotations']:
        image = coco.imgs[ann['image_id']]
        x, y, w, h = map(int, ann['bbox'])
        folder = tmp_path / 'cls' / coco.cats[ann['category_id']]['name']
        folder.mkdir(parents=True, exist_ok=True)
        Image.open(tiny_data / 'coco/val2017' / image['file_name']).crop(
            (x, y, x + w, y + h)).save(folder / f'{ann["id"]}.png')
    config = tmp_path / 'cls.py'
    config.write_text(
        f"_base_ = '{REPO}/configs/gfnet/gfnet-h-ti_8xb128_in1k.py'\n"
        'model = dict(backbone=dict(arch=dict(_delete_=True, '
        'embed_dims=[8, 16, 24, 32], '
        'depths=[1, 1, 1, 1], mlp_ratio=2)), head=dict(num_classes=3, '
        'in_channels=32))\n'
        'test_dataloader = dict(batch_size=4, num_workers=0, '
        'persistent_workers=False, dataset=dict(_delete_=True, '
        f"type='CustomDataset', data_root='{tmp_path / 'cls'}', "
        "pipeline=[dict(type='LoadImageFromFile'), dict(type='Resize', "
        "scale=(32, 32)), dict(type='PackInputs')]))\n"
        "test_evaluator = dict(type='Accuracy', topk=(1, 2))\n"
        'data_preprocessor = dict(num_classes=3)\n')
    ckpt = tmp_path / 'cls.pth'
    torch.save({'state_dict': build_model(Config.fromfile(config))
                .state_dict()}, ckpt)
    metrics = tmp_path / 'metrics.json'
    proc = checked(run(config, ckpt, '--work-dir', tmp_path / 'work',
                       '--dump-metrics', metrics, '--show-dir',
                       tmp_path / 'show', tool='test.py'))
    assert 'accuracy/top1' in proc.stdout + proc.stderr
    assert {'accuracy/top1', 'accuracy/top2'} <= set(
        __import__('json').loads(metrics.read_text()))
    assert list((tmp_path / 'show').glob('*.png'))
