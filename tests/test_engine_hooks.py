"""Hooks and config helpers the train/test tools add to every run."""
import logging
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import HOOKS

import mmspectral  # noqa: F401
from mmspectral.engine import (CuFFTPlanCacheHook, ExactResumeHook,
                               add_exact_resume, bound_cufft_plan_cache)


class FakePlanCaches:
    """Stands in for ``torch.backends.cuda.cufft_plan_cache``."""

    def __init__(self):
        self.devices = {}

    def __getitem__(self, device):
        return self.devices.setdefault(device, SimpleNamespace(max_size=4096))


def fake_cuda(monkeypatch) -> FakePlanCaches:
    """Pretend to have CUDA with device 1 current."""
    caches = FakePlanCaches()
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'current_device', lambda: 1)
    monkeypatch.setattr(torch.backends.cuda, 'cufft_plan_cache', caches)
    return caches


def test_plan_cache_of_the_current_device_is_bounded(monkeypatch):
    hook = HOOKS.build(dict(type='mmspectral.CuFFTPlanCacheHook', max_size=8))
    caches = fake_cuda(monkeypatch)
    hook.before_run(SimpleNamespace(logger=logging.getLogger('test')))
    assert caches[1].max_size == 8
    assert caches[0].max_size == 4096  # other devices are left alone


def test_plan_cache_hook_does_nothing_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    CuFFTPlanCacheHook().before_run(runner=None)  # would raise if it tried


@pytest.mark.parametrize('max_size', [-1, 2.5, True, '8'])
def test_plan_cache_hook_rejects_a_bad_size(max_size):
    with pytest.raises(ValueError, match='max_size must be an int'):
        CuFFTPlanCacheHook(max_size)


def test_tools_add_their_hooks_once():
    cfg = Config(dict(custom_hooks=[dict(type='SomeOtherHook')]))
    for _ in range(2):
        add_exact_resume(cfg)
        bound_cufft_plan_cache(cfg)
    assert [h['type'] for h in cfg.custom_hooks] == [
        'SomeOtherHook', 'mmspectral.ExactResumeHook',
        'mmspectral.CuFFTPlanCacheHook'
    ]
    assert CuFFTPlanCacheHook().max_size == 256


def test_a_configured_hook_keeps_its_arguments():
    cfg = Config(dict(custom_hooks=[
        dict(type='CuFFTPlanCacheHook', max_size=16),
        dict(type=ExactResumeHook),
    ]))
    add_exact_resume(cfg)
    bound_cufft_plan_cache(cfg)
    assert len(cfg.custom_hooks) == 2
    assert cfg.custom_hooks[0]['max_size'] == 16
