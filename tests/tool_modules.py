"""Tool scripts loaded as Python runs them, with the script's folder first
on ``sys.path`` (a helper for the tests, not a test module): the tests call
their ``main(argv)``, and the tiny-data fixtures use the generator the demo
uses (``tools/misc/``)."""
import functools
import importlib.util
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[1] / 'tools'


@functools.lru_cache(maxsize=None)
def load_tool(relative: str):
    """The module of ``tools/<relative>``."""
    path = TOOLS / relative
    spec = importlib.util.spec_from_file_location(
        'tool_' + relative.replace('/', '_')[:-3], path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def make_tiny_datasets(root, **kwargs) -> dict:
    """``tools/misc/tiny_data.py``'s generator."""
    return load_tool('misc/tiny_data.py').make_tiny_datasets(root, **kwargs)


def short_run(cfg, data_root, work_dir, iters: int = 1):
    """``cfg`` trained ``iters`` iterations then validated on the tiny data
    under ``data_root`` (the folder holding ``coco/`` and ``cityscapes/``),
    in one process and with batches of 2; the model is left as the config
    has it (without its pretrained checkpoint)."""
    import os.path as osp

    from mmengine.config import Config

    from mmspectral.cli import fit_amp_to_device
    tiny = load_tool('misc/tiny_configs.py')
    tiny_file = tiny.tiny_config_file(cfg)
    subset = 'cityscapes' if 'cityscapes' in tiny_file.name else 'coco'
    tiny.use_tiny_data(cfg, Config.fromfile(tiny_file),
                       osp.join(str(data_root), subset), iters)
    for phase in ('train', 'val', 'test'):
        loader = cfg[f'{phase}_dataloader']
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
    cfg.param_scheduler = []
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = str(work_dir)
    cfg.launcher = 'none'
    fit_amp_to_device(cfg)  # as tools/train.py does
    return cfg
