"""Run any mmdet / mmseg config on the bundled tiny data.

The tiny configs (``configs/tiny``) inherit real configs and change only the
data, the image scale and the schedule. :func:`use_tiny_data` does the same
to any other config of the same task, so that every config can be trained
and evaluated in minutes (``tools/demo.py --configs NAME``; the tests
shorten that to a few iterations).
"""
import copy
import os.path as osp
from pathlib import Path
from typing import Optional

from mmengine.config import Config

# configs/tiny of the source tree these tools live in
TINY_CONFIG_DIR = Path(__file__).resolve().parents[2] / 'configs' / 'tiny'

# the tiny config whose data and schedule each kind of config takes
TINY_CONFIG_NAMES = {
    'instance': 'mask-rcnn_gfnet-h-ti_fpn_60i_tiny-coco',
    'detection': 'retinanet_gfnet-h-ti_fpn_200i_tiny-coco',
    'segmentation': 'segformer_gfnet-h-ti_200i_tiny-cityscapes',
}
_SCHEDULE_KEYS = ('train_cfg', 'param_scheduler', 'log_processor',
                  'randomness')


def tiny_config_name(cfg: Config) -> str:
    """Name of the tiny config whose data suits ``cfg``."""
    scope = cfg.get('default_scope')
    if scope == 'mmseg':
        return TINY_CONFIG_NAMES['segmentation']
    if scope == 'mmdet':
        metric = cfg.get('val_evaluator', {}).get('metric', 'bbox')
        kind = 'instance' if 'segm' in metric else 'detection'
        return TINY_CONFIG_NAMES[kind]
    raise ValueError('tiny data exists for mmdet and mmseg configs, not '
                     f'for default_scope {scope!r}')


def tiny_config_file(cfg: Config) -> Path:
    """``configs/tiny/<name>.py`` of the tiny config whose data suits
    ``cfg``."""
    return TINY_CONFIG_DIR / f'{tiny_config_name(cfg)}.py'


def _set_num_classes(node, num_classes: int):
    if isinstance(node, dict):
        if 'num_classes' in node:
            node['num_classes'] = num_classes
        for value in node.values():
            _set_num_classes(value, num_classes)
    elif isinstance(node, list):
        for value in node:
            _set_num_classes(value, num_classes)


def use_tiny_data(cfg: Config,
                  tiny: Config,
                  data_root: Optional[str] = None,
                  iters: Optional[int] = None) -> Config:
    """``cfg``'s model (without its pretrained checkpoint) on the data of the
    tiny config ``tiny``, with ``tiny``'s schedule.

    Args:
        cfg (Config): A real config; changed in place and returned.
        tiny (Config): A tiny config of the same task.
        data_root (str, optional): Where the tiny dataset lies, if not where
            ``tiny`` says.
        iters (int, optional): Training iterations instead of ``tiny``'s.
    """
    for phase in ('train', 'val', 'test'):
        loader = copy.deepcopy(tiny[f'{phase}_dataloader'])
        if data_root:
            loader.dataset.data_root = osp.join(data_root, '')
        cfg[f'{phase}_dataloader'] = loader
    data_root = cfg.val_dataloader.dataset.data_root
    if 'ann_file' in tiny.val_evaluator:
        ann_file = osp.join(data_root, tiny.val_dataloader.dataset.ann_file)
        for key in ('val_evaluator', 'test_evaluator'):
            cfg[key].ann_file = ann_file
    else:
        cfg.model.data_preprocessor.size = tiny.model.data_preprocessor.size
    _set_num_classes(cfg.model, tiny.num_classes)
    cfg.model.backbone.init_cfg = None
    for key in _SCHEDULE_KEYS:
        cfg[key] = copy.deepcopy(tiny[key])
    cfg.optim_wrapper.optimizer.lr = tiny.optim_wrapper.optimizer.lr
    cfg.default_hooks.logger = tiny.default_hooks.logger
    cfg.default_hooks.checkpoint = tiny.default_hooks.checkpoint
    if iters is not None:
        cfg.train_cfg = dict(
            type='IterBasedTrainLoop', max_iters=iters, val_interval=iters)
        cfg.default_hooks.checkpoint.interval = iters
    return cfg
