"""A checkpoint never runs code, wherever mmspectral reads it, and mmengine
checkpoints (message hub, numpy arrays) still load and resume."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner import CheckpointLoader

import mmspectral  # noqa: F401  (installs the allow-list)
from mmspectral.checkpoint import CheckpointError, read_checkpoint
from checkpoint_exploits import write_exploit
from conftest import REPO

EXPLOITS = [('history_buffer', True), ('history_buffer', False),
            ('os_system', True)]


def saved_message_hub(tmp_path):
    hub = MessageHub.get_instance('safety-test')
    hub.update_scalar('train/loss', 0.5)
    hub.update_scalar('train/loss', np.float64(0.25))
    hub.update_info('iter', 3)
    path = tmp_path / 'ckpt.pth'
    torch.save({
        'meta': {'epoch': 1, 'iter': 3, 'seed': np.int64(7),
                 'dataset_meta': {'classes': ('a', 'b')}},
        'state_dict': {'w': torch.ones(2)},
        'message_hub': hub.state_dict(),
    }, path)
    return path


def test_mmengine_checkpoints_load_and_resume(tmp_path):
    path = saved_message_hub(tmp_path)
    loaded = CheckpointLoader.load_checkpoint(str(path), 'cpu')
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer)
    assert buffer.mean() == pytest.approx(0.375)
    assert buffer.statistics('max') == 0.5  # the pickled statistics methods
    assert loaded['meta']['seed'] == 7
    resumed = MessageHub.get_instance('safety-test-resumed')
    resumed.load_state_dict(loaded['message_hub'])
    assert resumed.get_info('iter') == 3


NAIVE_LOAD = r'''
import sys, torch
from mmengine.logging import HistoryBuffer
torch.serialization.add_safe_globals([getattr, HistoryBuffer])
try:
    torch.load(sys.argv[1], weights_only=True)
except Exception:
    pass
'''


def test_the_exploit_runs_where_getattr_is_allow_listed(tmp_path):
    """The exploit is live: with ``getattr`` and ``HistoryBuffer`` trusted
    (what mmspectral once allowed) its payload runs; so the refusals below
    are mmspectral's doing, not torch's."""
    marker = tmp_path / 'ran'
    path = write_exploit(tmp_path / 'evil.pth', marker)
    subprocess.run([sys.executable, '-c', NAIVE_LOAD, str(path)], check=True)
    assert marker.exists()


@pytest.mark.parametrize('kind,zip_format', EXPLOITS)
def test_readers_refuse_the_exploit(tmp_path, kind, zip_format):
    marker = tmp_path / 'ran'
    path = str(write_exploit(tmp_path / 'evil.pth', marker, kind,
                             zip_format))
    for load in (read_checkpoint,
                 lambda p: CheckpointLoader.load_checkpoint(p, 'cpu'),
                 lambda p: torch.load(p, weights_only=True),
                 torch.load):
        with pytest.raises(Exception, match='(?i)refused|weights only'):
            load(path)
        assert not marker.exists()


def test_mmengine_loading_stays_weights_only_when_torch_is_told_not_to(
        tmp_path):
    """TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 turns torch.load's default off;
    mmengine's loader still goes through mmspectral's weights-only read."""
    marker = tmp_path / 'ran'
    path = write_exploit(tmp_path / 'evil.pth', marker)
    script = ('import sys, mmspectral\n'
              'from mmengine.runner import load_checkpoint\n'
              'import torch\n'
              'try:\n'
              '    load_checkpoint(torch.nn.Linear(1, 1), sys.argv[1])\n'
              'except Exception as e:\n'
              '    print(type(e).__name__)\n')
    proc = subprocess.run(
        [sys.executable, '-c', script, str(path)], capture_output=True,
        text=True, env=dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD='1'))
    assert 'CheckpointError' in proc.stdout, proc.stderr[-2000:]
    assert not marker.exists()


def test_unreadable_checkpoints_are_named(tmp_path):
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    with pytest.raises(CheckpointError, match='empty.pth is empty'):
        read_checkpoint(str(empty))
    whole = tmp_path / 'whole.pth'
    torch.save({'state_dict': {'w': torch.ones(1000)}}, whole)
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(whole.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match='truncated.pth is not a '
                       'readable PyTorch checkpoint'):
        read_checkpoint(str(truncated))
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        read_checkpoint(str(tmp_path / 'nowhere.pth'))


# -- every entry point refuses it ---------------------------------------------

def tool(*args):
    return subprocess.run([sys.executable, *map(str, args)],
                          capture_output=True, text=True, cwd=REPO)


@pytest.fixture
def exploit(tmp_path):
    marker = tmp_path / 'ran'
    path = write_exploit(tmp_path / 'evil.pth', marker)
    yield path
    assert not marker.exists(), 'the checkpoint ran code'


@pytest.mark.parametrize('family', ['gfnet', 'afno', 'hornet', 'spectformer'])
def test_converters_refuse_it(exploit, tmp_path, family):
    proc = tool(REPO / 'tools' / 'model_converters' /
                f'{family}2mmspectral.py', exploit, tmp_path / 'out.pth')
    assert proc.returncode != 0
    assert 'was refused' in proc.stderr and 'Traceback' not in proc.stderr
    assert not (tmp_path / 'out.pth').exists()


def test_filter_plots_refuse_it(exploit, tmp_path):
    proc = tool(REPO / 'tools' / 'analysis_tools' / 'visualize_filters.py',
                exploit, '--out', tmp_path / 'plots')
    assert proc.returncode != 0 and 'was refused' in proc.stderr


def test_pretrained_init_refuses_it(exploit):
    from mmspectral.models import GFNetH
    model = GFNetH(arch=dict(embed_dims=[8, 8, 8, 8], depths=[1, 1, 1, 1],
                             mlp_ratio=1),
                   init_cfg=dict(type='Pretrained', checkpoint=str(exploit)))
    with pytest.raises(CheckpointError, match='was refused'):
        model.init_weights()


# -- what `import mmspectral` changes -----------------------------------------

IMPORT_EFFECTS = r'''
import json, torch
import mmengine.runner
from mmengine.runner import CheckpointLoader
from mmengine.utils import import_modules_from_strings
before = dict(CheckpointLoader._schemes)
safe_before = set(torch.serialization.get_safe_globals())
# as custom_imports=dict(imports=['mmspectral']) of mmdet's tools does
import_modules_from_strings(['mmspectral'])
import mmspectral
from mmspectral.checkpoint_scan import torch_safe_globals
after = dict(CheckpointLoader._schemes)
mmspectral.route_checkpoint_loading()
safe_after = set(torch.serialization.get_safe_globals())
print(json.dumps({
    'before': sorted(before),
    'after': sorted(after),
    'loaders': sorted({f'{f.__module__}.{f.__name__}'
                       for f in after.values()}),
    'again_same': dict(CheckpointLoader._schemes) == after,
    'added_not_torch': sorted(repr(g) for g in safe_after - safe_before
                              if not (getattr(g, '__module__', '')
                                      or '').startswith('torch')),
    'ours_in_torch_list': sorted(repr(g) for g in torch_safe_globals()
                                 if g in safe_after),
}))
'''


def test_import_routes_every_mmengine_scheme_and_nothing_else():
    """``import mmspectral`` (as custom_imports does it) makes
    mmspectral.compat.load_from_mmspectral the loader of every scheme
    CheckpointLoader had, plus file://, and adds nothing to torch's
    process-wide weights-only allow-list."""
    import json
    proc = subprocess.run([sys.executable, '-c', IMPORT_EFFECTS],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    effects = json.loads(proc.stdout.strip().splitlines()[-1])
    assert effects['after'] == sorted(set(effects['before']) | {'file://'})
    assert {'', 'http://', 'https://', 'open-mmlab://', 'torchvision://',
            'mmcls://', 'pavi://', r'(\S+\:)?s3://'} <= set(effects['after'])
    assert effects['loaders'] == ['mmspectral.compat.load_from_mmspectral']
    assert effects['again_same']
    assert effects['added_not_torch'] == []
    assert effects['ours_in_torch_list'] == []
