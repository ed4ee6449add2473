"""Point configs at the session's tiny data and a short schedule."""
from pathlib import Path

from mmengine.config import Config

from mmspectral.datasets import tiny_config_name, use_tiny_data
from mmspectral.engine import fit_amp_to_device
from conftest import REPO


def short_run(cfg: Config, data: Path, work_dir: Path,
              iters: int = 1) -> Config:
    """Train ``iters`` iterations then validate, on the tiny data; the model
    is left as the config has it (without its pretrained checkpoint)."""
    name = tiny_config_name(cfg)
    tiny = Config.fromfile(REPO / 'configs' / 'tiny' / f'{name}.py')
    subset = 'cityscapes' if 'cityscapes' in name else 'coco'
    use_tiny_data(cfg, tiny, str(data / subset), iters)
    for phase in ('train', 'val', 'test'):
        loader = cfg[f'{phase}_dataloader']
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
    cfg.param_scheduler = []
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = str(work_dir)
    cfg.launcher = 'none'
    fit_amp_to_device(cfg)  # as tools/train.py does
    return cfg
