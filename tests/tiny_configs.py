"""Point configs at the session's tiny data and a short schedule."""
from pathlib import Path

from mmengine.config import Config

from mmspectral.engine import fit_amp_to_device
from conftest import REPO

TINY = {
    algorithm: REPO / 'configs' / 'tiny' / f'{name}.py'
    for algorithm, name in (
        ('mask-rcnn', 'mask-rcnn_gfnet-h-ti_fpn_60i_tiny-coco'),
        ('retinanet', 'retinanet_gfnet-h-ti_fpn_200i_tiny-coco'),
        ('segformer', 'segformer_gfnet-h-ti_200i_tiny-cityscapes'),
    )
}


def _retarget(loader, data_root):
    loader.dataset.data_root = data_root
    loader.batch_size = 2
    loader.num_workers = 0
    loader.persistent_workers = False
    return loader


def _set_num_classes(node, num_classes):
    """Every head's class count, as a dataset swap requires."""
    if isinstance(node, dict):
        if 'num_classes' in node:
            node['num_classes'] = num_classes
        for value in node.values():
            _set_num_classes(value, num_classes)
    elif isinstance(node, list):
        for value in node:
            _set_num_classes(value, num_classes)


def tiny_data_of(algorithm: str, data: Path) -> dict:
    """The dataloaders and evaluators of the tiny config of ``algorithm``,
    reading ``data`` (the ``tiny_data`` fixture)."""
    tiny = Config.fromfile(TINY[algorithm])
    coco = algorithm != 'segformer'
    data_root = str(data / ('coco' if coco else 'cityscapes')) + '/'
    out = {
        f'{phase}_dataloader': _retarget(tiny[f'{phase}_dataloader'],
                                         data_root)
        for phase in ('train', 'val', 'test')
    }
    if coco:
        out['val_ann_file'] = data_root + 'annotations/instances_val2017.json'
        out['num_classes'] = len(tiny.metainfo['classes'])
    else:
        out['crop_size'] = tiny.crop_size
    return out


def short_run(cfg: Config, algorithm: str, data: Path, work_dir: Path,
              iters: int = 1) -> Config:
    """Train ``iters`` iterations then validate, on the tiny data; the model
    is left as the config has it (without its pretrained checkpoint)."""
    tiny = tiny_data_of(algorithm, data)
    for phase in ('train', 'val', 'test'):
        cfg[f'{phase}_dataloader'] = tiny[f'{phase}_dataloader']
    if 'val_ann_file' in tiny:
        for key in ('val_evaluator', 'test_evaluator'):
            cfg[key].ann_file = tiny['val_ann_file']
        _set_num_classes(cfg.model, tiny['num_classes'])
    else:
        cfg.model.data_preprocessor.size = tiny['crop_size']
    cfg.model.backbone.init_cfg = None
    cfg.train_cfg = dict(
        type='IterBasedTrainLoop', max_iters=iters, val_interval=iters)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False, interval=iters)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.log_processor = dict(by_epoch=False)
    cfg.work_dir = str(work_dir)
    cfg.launcher = 'none'
    fit_amp_to_device(cfg)  # as tools/train.py does
    return cfg
