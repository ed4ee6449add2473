"""The demo path (make demo) with two iterations per model."""
import json
import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'demo.py'), '--max-iters', '2',
         '--no-check', '--work-dir', str(tmp_path)],
        capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in ('mask-rcnn_gfnet-h-ti_fpn_60i_tiny-coco',
                 'retinanet_gfnet-h-ti_fpn_200i_tiny-coco',
                 'segformer_gfnet-h-ti_200i_tiny-cityscapes'):
        assert name in proc.stdout
        assert (tmp_path / name / 'iter_2.pth').is_file()
        json.loads((tmp_path / name / 'metrics.json').read_text())
    assert '| model' in proc.stdout
