"""torch >= 2.6 weights-only loading of mmengine checkpoints."""
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import _load_checkpoint

import mmspectral  # noqa: F401  (installs the allow-list)


def test_loads_mmengine_message_hub(tmp_path):
    hub = MessageHub.get_instance('compat-test')
    hub.update_scalar('train/loss', 0.5)
    hub.update_scalar('train/loss', np.float64(0.25))
    hub.update_info('iter', 3)
    ckpt = {
        'meta': {'epoch': 1, 'iter': 3, 'seed': np.int64(7),
                 'dataset_meta': {'classes': ('a', 'b')}},
        'state_dict': {'w': torch.ones(2)},
        'message_hub': hub.state_dict(),
    }
    path = tmp_path / 'ckpt.pth'
    torch.save(ckpt, path)
    loaded = _load_checkpoint(str(path), map_location='cpu')
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer)
    assert buffer.mean() == pytest.approx(0.375)
    assert loaded['meta']['seed'] == 7


class _Exploit:

    def __reduce__(self):
        return (os.system, ('echo pwned',))


def test_code_in_a_checkpoint_is_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    with open(path, 'wb') as f:
        pickle.dump({'state_dict': _Exploit()}, f)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, map_location='cpu')
