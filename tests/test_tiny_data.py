"""The tiny dataset generators and the stock mmdet / mmseg readers."""
import json

import numpy as np
import pytest
import torch
from mmcv.transforms import LoadImageFromFile
from pycocotools.coco import COCO

from tool_modules import load_tool, make_tiny_datasets

TINY_COCO_CLASSES = load_tool('misc/tiny_data.py').TINY_COCO_CLASSES

SIZES = dict(num_coco=(2, 5), num_cityscapes=(2, 4))


def make(root, **kwargs):
    return make_tiny_datasets(root, progress=False, **{**SIZES, **kwargs})


def tree(root):
    """Every file below ``root``, relative path -> bytes."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob('*')) if p.is_file()
    }


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp('tiny')
    make(root)
    return root


@pytest.fixture(scope='module')
def coco_dataset(root):
    from mmdet.datasets import CocoDataset
    from mmdet.datasets.transforms import LoadAnnotations
    return CocoDataset(
        data_root=str(root / 'coco'),
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        metainfo=dict(classes=TINY_COCO_CLASSES),
        pipeline=[
            LoadImageFromFile(),
            LoadAnnotations(with_bbox=True, with_mask=True)
        ],
        test_mode=False)


@pytest.fixture(scope='module')
def city_dataset(root):
    from mmseg.datasets import CityscapesDataset
    from mmseg.datasets.transforms import LoadAnnotations
    return CityscapesDataset(
        data_root=str(root / 'cityscapes'),
        data_prefix=dict(
            img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=[LoadImageFromFile(), LoadAnnotations()])


def test_layout(root):
    files = tree(root)
    assert {
        'coco/annotations/instances_train2017.json',
        'coco/annotations/instances_val2017.json',
        'coco/train2017/000000000001.jpg', 'coco/val2017/000000000005.jpg',
        'coco/.complete', 'cityscapes/.complete'
    } <= set(files)
    stems = [f'tinycity_{i:06d}_000019' for i in range(4)]
    for stem in stems:
        assert f'cityscapes/leftImg8bit/val/tinycity/{stem}_leftImg8bit.png' \
            in files
        assert (f'cityscapes/gtFine/val/tinycity/'
                f'{stem}_gtFine_labelTrainIds.png') in files
    assert not any('.tmp' in name for name in files)


def test_deterministic(root, tmp_path):
    make(tmp_path)
    assert tree(tmp_path) == tree(root)


def test_seed_changes_data(root, tmp_path):
    make(tmp_path, seed=1)
    name = 'coco/val2017/000000000001.jpg'
    assert tree(tmp_path)[name] != tree(root)[name]


def test_coco_annotations(root):
    coco = COCO(str(root / 'coco/annotations/instances_val2017.json'))
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == \
        list(TINY_COCO_CLASSES)
    assert sorted(coco.anns) == list(range(1, len(coco.anns) + 1))
    for ann in coco.anns.values():
        img = coco.imgs[ann['image_id']]
        mask = coco.annToMask(ann).astype(bool)
        ys, xs = np.nonzero(mask)
        x, y, w, h = ann['bbox']
        assert 16 <= max(w, h) <= 60 and ann['iscrowd'] == 0
        assert 0 <= x and x + w <= img['width']
        assert 0 <= y and y + h <= img['height']
        assert abs(mask.sum() - ann['area']) <= 0.03 * ann['area'] + 4
        # within 2 px: thin triangle tips may cover no pixel centre
        assert abs(xs.min() - x) <= 2 and abs(xs.max() + 1 - (x + w)) <= 2
        assert abs(ys.min() - y) <= 2 and abs(ys.max() + 1 - (y + h)) <= 2


def test_coco_pixels_match_masks(coco_dataset):
    """The pixels of each mask have the colour of its class."""
    colours = np.array([(220, 50, 45), (40, 95, 225), (240, 200, 35)])
    for i in range(len(coco_dataset)):
        data = coco_dataset[i]
        rgb = data['img'][..., ::-1].astype(float)
        for mask, label in zip(data['gt_masks'].masks,
                               data['gt_bboxes_labels']):
            inner = rgb[mask.astype(bool)]
            assert np.linalg.norm(np.median(inner, 0) - colours[label]) < 45


def test_mmdet_reads_coco(coco_dataset):
    coco = COCO(coco_dataset.ann_file)
    assert len(coco_dataset) == 5
    shapes = set()
    for i in range(len(coco_dataset)):
        data = coco_dataset[i]
        num = len(coco.getAnnIds(imgIds=[data['img_id']]))
        height, width = data['img'].shape[:2]
        assert 1 <= num <= 4
        assert len(data['gt_bboxes']) == len(data['gt_masks']) == num
        assert data['gt_masks'].masks.shape == (num, height, width)
        shapes.add((height, width))
    assert any(h != w for h, w in shapes) and len(shapes) == 5


def test_coco_metric_of_ground_truth(coco_dataset):
    from mmdet.evaluation import CocoMetric
    metric = CocoMetric(
        ann_file=coco_dataset.ann_file, metric=['bbox', 'segm'])
    metric.dataset_meta = coco_dataset.metainfo
    for i in range(len(coco_dataset)):
        data = coco_dataset[i]
        pred = dict(
            bboxes=data['gt_bboxes'].tensor,
            scores=torch.ones(len(data['gt_bboxes'])),
            labels=torch.from_numpy(data['gt_bboxes_labels']),
            masks=torch.from_numpy(data['gt_masks'].masks).bool())
        metric.process({}, [
            dict(
                pred_instances=pred,
                img_id=data['img_id'],
                ori_shape=data['ori_shape'])
        ])
    results = metric.evaluate(len(coco_dataset))
    assert results['coco/bbox_mAP'] > 0.99
    assert results['coco/segm_mAP'] > 0.99


def test_mmseg_reads_cityscapes(city_dataset):
    assert len(city_dataset) == 4
    allowed = set(range(19)) | {255}
    present = set()
    for i in range(len(city_dataset)):
        data = city_dataset[i]
        labels = data['gt_seg_map']
        assert labels.shape == data['img'].shape[:2]
        assert labels.shape[1] == 2 * labels.shape[0]
        present |= set(np.unique(labels).tolist())
    assert present <= allowed
    assert {0, 1, 2, 8, 10, 255} <= present


def test_iou_metric_of_ground_truth(city_dataset):
    from mmseg.evaluation import IoUMetric
    metric = IoUMetric(iou_metrics=['mIoU'])
    metric.dataset_meta = city_dataset.metainfo
    for i in range(len(city_dataset)):
        labels = torch.from_numpy(city_dataset[i]['gt_seg_map'])[None]
        metric.process({}, [
            dict(pred_sem_seg=dict(data=labels), gt_sem_seg=dict(data=labels))
        ])
    assert metric.evaluate(len(city_dataset))['mIoU'] == 100.0


def test_complete_datasets_are_skipped(root):
    before = tree(root)
    summary = make(root)
    assert summary['coco']['skipped'] and summary['cityscapes']['skipped']
    assert summary['coco']['images'] == dict(train=2, val=5)
    assert summary['cityscapes']['root'] == str(root / 'cityscapes')
    assert tree(root) == before


def test_incomplete_or_different_datasets_are_remade(tmp_path):
    make(tmp_path)
    (tmp_path / 'coco/.complete').unlink()  # as if interrupted
    (tmp_path / 'coco.tmp').mkdir()  # leftover of an interrupted run
    summary = make(tmp_path, num_cityscapes=(1, 1))
    assert not summary['coco']['skipped']
    assert not summary['cityscapes']['skipped']
    assert not (tmp_path / 'coco.tmp').exists()
    marker = json.loads((tmp_path / 'cityscapes/.complete').read_text())
    assert marker['args'] == dict(num_train=1, num_val=1, seed=0)
    assert len(list((tmp_path / 'cityscapes').rglob('*.png'))) == 4


def load_cli():
    return load_tool('misc/make_tiny_data.py')


def test_cli_skips_and_force_regenerates(tmp_path, capsys):
    cli = load_cli()
    assert not any(info['skipped']
                   for info in cli.main(['--root', str(tmp_path)]).values())
    stale = tmp_path / 'coco/val2017/stale.jpg'
    stale.write_bytes(b'')
    assert all(info['skipped']
               for info in cli.main(['--root', str(tmp_path)]).values())
    assert stale.exists()
    capsys.readouterr()
    summary = cli.main(['--root', str(tmp_path), '--force'])
    assert not any(info['skipped'] for info in summary.values())
    assert not stale.exists()
    assert f'coco: {tmp_path / "coco"}' in capsys.readouterr().out
