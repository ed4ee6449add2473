"""Checkpoints named by URL are read like local files: downloaded without
unpickling (into torch's hub cache, here a temporary TORCH_HOME), then
checked and loaded weights-only. A pickle payload served from a local HTTP
server runs at no entry point and under no scheme."""
import http.server
import json
import os
import sys
import threading
import types
from pathlib import Path

import pytest
import torch
from mmengine.model import BaseModule
from mmengine.runner import CheckpointLoader, load_checkpoint

import mmspectral  # noqa: F401
from mmspectral.checkpoint import CheckpointError, read_checkpoint
from checkpoint_exploits import as_torch_zip, os_system_exploit
from tool_runs import SEG, run, write_config

TINY_GFNET = dict(embed_dims=[8, 8, 8, 8], depths=[1, 1, 1, 1], mlp_ratio=1)


class Server:
    """A local HTTP server of ``files`` (URL path -> bytes)."""

    def __init__(self):
        self.files, self.requests = {}, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):

            def do_GET(self):
                server.requests.append(self.path)
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                     Handler)
        self.root = f'http://127.0.0.1:{self.httpd.server_address[1]}'
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def serve(self, name: str, data: bytes) -> str:
        self.files[f'/{name}'] = data
        return f'{self.root}/{name}'


@pytest.fixture
def server():
    server = Server()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def homes(tmp_path, monkeypatch):
    """TORCH_HOME (the download cache) and MMENGINE_HOME in ``tmp_path``."""
    homes = {'TORCH_HOME': str(tmp_path / 'torch-home'),
             'MMENGINE_HOME': str(tmp_path / 'mmengine-home')}
    for key, value in homes.items():
        monkeypatch.setenv(key, value)
    return homes


@pytest.fixture
def payload(tmp_path, server, homes):
    """The URL of a checkpoint whose unpickling would create ``marker``;
    after the test, the marker must not exist."""
    marker = tmp_path / 'ran'
    url = server.serve('evil.pth', as_torch_zip(os_system_exploit(marker)))
    yield url
    assert not marker.exists(), 'the served checkpoint ran code'


def pretrained_module(url):
    """Any module with mmengine's PretrainedInit (mmdet's ResNet, ...)."""

    class Module(BaseModule):

        def __init__(self):
            super().__init__(init_cfg=dict(type='Pretrained', checkpoint=url))
            self.fc = torch.nn.Linear(1, 1)

    return Module()


def gfnet(url):
    from mmspectral.models import GFNetH
    return GFNetH(arch=TINY_GFNET,
                  init_cfg=dict(type='Pretrained', checkpoint=url))


ENTRY_POINTS = {
    'read_checkpoint': read_checkpoint,
    'CheckpointLoader': lambda url: CheckpointLoader.load_checkpoint(url),
    'load_checkpoint': lambda url: load_checkpoint(torch.nn.Linear(1, 1),
                                                   url),
    'PretrainedInit': lambda url: pretrained_module(url).init_weights(),
    'GFNet init_cfg': lambda url: gfnet(url).init_weights(),
}


@pytest.mark.parametrize('entry', ENTRY_POINTS)
def test_a_served_payload_runs_at_no_entry_point(payload, entry):
    with pytest.raises(CheckpointError,
                       match='evil.pth was refused: .*os.system'):
        ENTRY_POINTS[entry](payload)


def scheme_urls(server, payload, tmp_path, monkeypatch):
    """The payload named under every scheme mmengine registers (model tables
    and clients stubbed to point at it)."""
    from mmengine.runner import checkpoint as mmengine_checkpoint
    data = server.files['/evil.pth']
    home = Path(os.environ['MMENGINE_HOME'])
    home.mkdir(parents=True, exist_ok=True)
    (home / 'open_mmlab.json').write_text(json.dumps({'evil': payload}))
    for table in ('get_torchvision_models', 'get_mmcls_models'):
        monkeypatch.setattr(mmengine_checkpoint, table,
                            lambda: {'evil': payload})
    local = tmp_path / 'local-evil.pth'
    local.write_bytes(data)

    class PaviModel:
        name = 'evil.pth'

        def download(self, path):
            Path(path).write_bytes(data)

    pavi = types.ModuleType('pavi')
    pavi.modelcloud = types.SimpleNamespace(get=lambda name: PaviModel())
    monkeypatch.setitem(sys.modules, 'pavi', pavi)
    monkeypatch.setattr(
        'mmengine.fileio.get_file_backend',
        lambda *args, **kwargs: types.SimpleNamespace(get=lambda name: data))
    return {
        'http': payload,
        'file': f'file://{local}',
        'open-mmlab': 'open-mmlab://evil',
        'openmmlab': 'openmmlab://evil',
        'torchvision': 'torchvision://evil',
        'modelzoo': 'modelzoo://evil',
        'mmcls': 'mmcls://evil',
        'pavi': 'pavi://evil',
        's3': 's3://bucket/evil.pth',
        'petrel': 'cluster:petrel://bucket/evil.pth',
    }


@pytest.mark.parametrize('scheme', [
    'http', 'file', 'open-mmlab', 'openmmlab', 'torchvision', 'modelzoo',
    'mmcls', 'pavi', 's3', 'petrel'
])
def test_every_scheme_ends_in_the_checked_reading(payload, server, tmp_path,
                                                  monkeypatch, scheme):
    """Through mmengine's CheckpointLoader, as ``load_from``, ``--resume``
    and PretrainedInit of any module use it (``file://`` once recursed
    forever; the others ended in weights_only=False)."""
    url = scheme_urls(server, payload, tmp_path, monkeypatch)[scheme]
    with pytest.raises(CheckpointError, match='was refused: .*os.system'):
        CheckpointLoader.load_checkpoint(url)


def test_https_is_routed_to_the_checked_reading():
    loader = CheckpointLoader._get_checkpoint_loader('https://host/x.pth')
    assert loader.__module__ == 'mmspectral.compat'


def test_the_download_cache_is_checked_too(payload, server, homes):
    cached = Path(homes['TORCH_HOME'], 'hub', 'checkpoints', 'evil.pth')
    for _ in range(2):
        with pytest.raises(CheckpointError, match='was refused'):
            read_checkpoint(payload)
        assert cached.is_file()
    assert server.requests == ['/evil.pth']  # the second read: the cache


def test_served_checkpoints_load(server, homes, tmp_path):
    """A plain checkpoint and a safetensors one, by URL."""
    from safetensors.torch import save
    weights = {'w': torch.arange(3.)}
    path = tmp_path / 'plain.pth'
    torch.save({'state_dict': weights}, path)
    url = server.serve('plain.pth', path.read_bytes())
    assert torch.equal(read_checkpoint(url)['state_dict']['w'], weights['w'])
    url = server.serve('plain.safetensors', save(weights))
    loaded = CheckpointLoader.load_checkpoint(url)
    assert torch.equal(loaded['state_dict']['w'], weights['w'])


def test_unreachable_and_unknown_urls_are_named(server, homes):
    with pytest.raises(CheckpointError, match='cannot download .*missing.pth'):
        read_checkpoint(server.root + '/missing.pth')
    with pytest.raises(CheckpointError, match='unknown checkpoint scheme'):
        read_checkpoint('ftp2://host/x.pth')
    with pytest.raises(CheckpointError, match="torchvision has no checkpoint "
                       "named 'nonexistent'"):
        read_checkpoint('torchvision://nonexistent')


# -- the tools ------------------------------------------------------------


@pytest.fixture
def tool_env(homes):
    return dict(homes)


def tool_refused(proc):
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert 'evil.pth was refused' in proc.stderr, proc.stderr[-3000:]
    assert 'os.system' in proc.stderr
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert 'weights_only' not in proc.stderr


@pytest.mark.parametrize('entry', ['test', 'resume', 'load_from'])
def test_train_and_test_refuse_a_served_payload(payload, tiny_data, tmp_path,
                                                tool_env, entry):
    config = write_config(tmp_path, SEG, tiny_data / 'cityscapes', 1)
    work = tmp_path / 'work'
    args = {'test': (config, payload, '--work-dir', work),
            'resume': (config, '--work-dir', work, '--resume', payload),
            'load_from': (config, '--work-dir', work, '--cfg-options',
                          f'load_from={payload}')}[entry]
    tool_refused(run(*args, env=tool_env,
                     tool='test.py' if entry == 'test' else 'train.py'))
    assert not work.exists() or not any(work.rglob('*.pth'))


@pytest.mark.parametrize('tool', [
    'model_converters/gfnet2mmspectral.py',
    'analysis_tools/visualize_filters.py', 'deployment/pytorch2onnx.py'
])
def test_other_tools_refuse_a_served_payload(payload, tmp_path, tool_env,
                                             tool):
    args = {
        'model_converters/gfnet2mmspectral.py': (payload,
                                                 tmp_path / 'out.pth'),
        'analysis_tools/visualize_filters.py': (payload, '--out',
                                                tmp_path / 'plots'),
        'deployment/pytorch2onnx.py': (SEG, payload, '--out',
                                       tmp_path / 'x.onnx', '--shape', '64',
                                       '64'),
    }[tool]
    tool_refused(run(*args, env=tool_env, tool=tool))
    assert not (tmp_path / 'out.pth').exists()
    assert not (tmp_path / 'x.onnx').exists()
