"""Running tools/train.py and tools/test.py on the tiny data, as a user
does (a helper for the tool tests, not a test module)."""
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO

TINY = REPO / 'configs' / 'tiny'
SEG = TINY / 'segformer_gfnet-h-ti_200i_tiny-cityscapes.py'
DET = TINY / 'retinanet_gfnet-h-ti_fpn_200i_tiny-coco.py'
HELPERS = Path(__file__).parent / 'helpers'


def loaders(data_root: Path, batch_size: int = 2) -> str:
    text = ''
    for phase in ('train', 'val', 'test'):
        text += (f'{phase}_dataloader = dict(batch_size={batch_size}, '
                 'num_workers=0, persistent_workers=False, '
                 f"dataset=dict(data_root='{data_root}/'))\n")
    return text


def write_config(tmp_path: Path, base: Path, data_root: Path, iters: int,
                 extra: str = '', name: str = 'config.py') -> Path:
    """A config inheriting ``base`` that reads ``data_root`` and trains
    ``iters`` iterations without validating."""
    text = (f"_base_ = '{base}'\n" + loaders(data_root) +
            f'train_cfg = dict(max_iters={iters}, val_interval=1000)\n'
            'default_hooks = dict(logger=dict(interval=1), '
            f'checkpoint=dict(interval={iters}))\n')
    if base == DET:
        text += (f"val_evaluator = dict(ann_file='{data_root}/annotations/"
                 "instances_val2017.json')\ntest_evaluator = val_evaluator\n")
    path = tmp_path / name
    path.write_text(text + extra)
    return path


def run(*args, env=None, tool='train.py'):
    return subprocess.run(
        [sys.executable, str(REPO / 'tools' / tool), *map(str, args)],
        capture_output=True, text=True, cwd=REPO,
        env=dict(os.environ, **(env or {})))


def checked(proc):
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in folder.rglob('*') if p.is_file()}


def assert_fails_cleanly(proc, work_dir, *needles):
    """The run failed with a message holding ``needles``, no traceback, and
    left the ``work_dir`` fixture's files as they were."""
    assert proc.returncode != 0
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr[-3000:])
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert snapshot(work_dir) == {'last_checkpoint': b'keep me',
                                  'iter_1.pth': b'precious'}
