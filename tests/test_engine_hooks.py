"""Hooks and config helpers the train/test tools add to every run."""
import logging
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import HOOKS

import mmspectral  # noqa: F401
from mmspectral.cli import add_exact_resume, bound_cufft_plan_cache
from mmspectral.engine import CuFFTPlanCacheHook, ExactResumeHook


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


def fake_runner(tmp_path, last_ckpt=None, load_from=None):
    from mmengine.logging import MessageHub
    hub = MessageHub(f'hub-{id(tmp_path)}-{last_ckpt}')
    if last_ckpt:
        hub.update_info('last_ckpt', last_ckpt)
    return SimpleNamespace(message_hub=hub, iter=2, epoch=0,
                           cfg=Config(dict(load_from=load_from)))


def test_divergence_names_only_a_checkpoint_that_was_written(tmp_path):
    """CheckpointHook names the file it is about to write before the weights
    are checked: a refused save must not be reported as written."""
    from mmspectral.engine import FiniteCheckHook, TrainingDiverged
    hook = FiniteCheckHook()
    runner = fake_runner(tmp_path)
    hook.before_train(runner)
    runner.message_hub.update_info('last_ckpt', str(tmp_path / 'iter_3.pth'))
    bad = dict(state_dict=dict(w=torch.tensor([float('inf')])))
    with pytest.raises(TrainingDiverged) as err:
        hook.before_save_checkpoint(runner, bad)
    assert 'no checkpoint was written' in str(err.value)
    assert 'iter_3.pth' not in str(err.value)
    # a save that went through is named from then on
    (tmp_path / 'iter_3.pth').write_bytes(b'saved')
    hook.before_save_checkpoint(runner, dict(state_dict=dict(
        w=torch.ones(1))))
    runner.message_hub.update_info('last_ckpt', str(tmp_path / 'iter_6.pth'))
    with pytest.raises(TrainingDiverged, match='the last checkpoint written '
                       f'is {tmp_path / "iter_3.pth"}'):
        hook.before_save_checkpoint(runner, bad)


def test_non_finite_predictions_stop_the_test(tmp_path):
    from mmengine.structures import BaseDataElement

    from mmspectral.engine import FiniteCheckHook, NonFinitePredictions
    runner = fake_runner(tmp_path, load_from='huge.pth')
    logits = torch.zeros(19, 4, 4)
    sample = BaseDataElement(metainfo=dict(img_path='a.png'),
                             seg_logits=BaseDataElement(data=logits),
                             gt_sem_seg=BaseDataElement(
                                 data=torch.full((4, 4), float('nan'))))
    hook = FiniteCheckHook()
    hook.after_test_iter(runner, 0, outputs=[sample])  # ground truth: ignored
    logits[3, 1, 1] = float('nan')
    with pytest.raises(NonFinitePredictions) as err:
        hook.after_test_iter(runner, 0, outputs=[sample])
    assert 'seg_logits.data' in str(err.value) and 'a.png' in str(err.value)
    assert 'huge.pth' in str(err.value)
    boxes = BaseDataElement(metainfo=dict(img_path='b.jpg'),
                            pred_instances=BaseDataElement(
                                bboxes=torch.tensor([[0., 1., float('inf'),
                                                      3.]]),
                                scores=torch.ones(1)))
    with pytest.raises(NonFinitePredictions, match='pred_instances.bboxes'):
        hook.after_val_iter(runner, 0, outputs=[boxes])


def test_a_corrupt_rng_state_is_named():
    import random

    import numpy as np
    good = dict(torch=torch.get_rng_state(), numpy=np.random.get_state(),
                random=random.getstate())
    ExactResumeHook.check_state(good)
    for part, value in (('torch', torch.zeros(7, dtype=torch.uint8)),
                        ('numpy', ('MT19937', np.zeros(3), 0, 0, 0.)),
                        ('random', (3, (1, 2), None))):
        with pytest.raises(ValueError, match=f"rng_state\\['{part}'\\]"):
            ExactResumeHook.check_state(dict(good, **{part: value}))
    with pytest.raises(ValueError, match='not a dict'):
        ExactResumeHook.check_state([1, 2])
