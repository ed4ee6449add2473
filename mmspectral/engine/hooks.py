"""Hooks that tools/train.py and tools/test.py add to every run."""
import math
import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.runner import IterBasedTrainLoop

from mmspectral.checkpoint import listing, non_finite_keys
from mmspectral.registry import HOOKS

__all__ = [
    'ExactResumeHook', 'CuFFTPlanCacheHook', 'FiniteCheckHook',
    'TrainingDiverged'
]


class TrainingDiverged(RuntimeError):
    """The loss or the weights became NaN or infinite."""


@HOOKS.register_module()
class ExactResumeHook(Hook):
    """Resume a run exactly where it was: the random number generators too.

    Checkpoints get the state of torch's (and CUDA's), numpy's and Python's
    generators; ``--resume`` restores it just before training goes on, so
    dropout, drop path and random sampling continue as in an uninterrupted
    run. An iteration-based loop replays the skipped batches through the
    data pipeline, which advances the data-augmentation generators (numpy,
    Python) by itself, so only torch's state is restored there.
    """
    priority = 'VERY_LOW'

    def __init__(self):
        self._state = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = dict(
            torch=torch.get_rng_state(),
            numpy=np.random.get_state(),
            random=random.getstate())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint['rng_state'] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # a plain load_from (fine-tuning) keeps the fresh generators
        if getattr(runner, '_resume', False):
            self._state = checkpoint.get('rng_state')

    def before_train(self, runner) -> None:
        state, self._state = self._state, None
        if state is None:
            return
        torch.set_rng_state(state['torch'])
        if 'cuda' in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state['cuda'])
        if not isinstance(runner.train_loop, IterBasedTrainLoop):
            np.random.set_state(state['numpy'])
            random.setstate(state['random'])


@HOOKS.register_module()
class CuFFTPlanCacheHook(Hook):
    """Bound the number of cuFFT plans PyTorch keeps on the run's GPU.

    PyTorch caches one cuFFT plan per transform shape and device, 4096 by
    default, and a plan can hold GPU memory of its own. Every global-filter
    layer needs plans for each feature-map size it sees (its forward and
    inverse transforms, and those of the backward pass), so multi-scale
    training and detection tests, whose batches come in many padded sizes,
    keep adding plans for sizes that may not return. The bound keeps the
    most recently used plans; an evicted one is made again when its size
    returns. Nothing happens without CUDA.

    Args:
        max_size (int): Plans kept per device. Defaults to 256.
    """
    priority = 'VERY_HIGH'

    def __init__(self, max_size: int = 256):
        if isinstance(max_size, bool) or not isinstance(max_size, int) or \
                max_size < 0:
            raise ValueError('CuFFTPlanCacheHook: max_size must be an int '
                             f'>= 0, got {max_size!r}')
        self.max_size = max_size

    def before_run(self, runner) -> None:
        if not torch.cuda.is_available():
            return
        device = torch.cuda.current_device()
        torch.backends.cuda.cufft_plan_cache[device].max_size = self.max_size
        runner.logger.info(f'cuFFT plan cache of cuda:{device} bounded at '
                           f'{self.max_size} plans')


def _value(value) -> float:
    if isinstance(value, torch.Tensor):
        return value.detach().float().mean().item()
    return float(value)


@HOOKS.register_module()
class FiniteCheckHook(Hook):
    """Stop training at the first NaN or infinite loss, before a checkpoint
    of the diverged weights is written.

    After each iteration every logged ``loss*`` value must be finite, and
    before a checkpoint is saved every weight must be; otherwise training
    stops with :class:`TrainingDiverged` naming the iteration, and the last
    checkpoint on disk stays the last good one. (Mixed precision with
    dynamic loss scaling skips overflowing steps by itself and does not
    trip this: its loss stays finite.)
    """
    # before CheckpointHook (VERY_LOW) in after_train_iter
    priority = 'ABOVE_NORMAL'

    @staticmethod
    def _last_checkpoint(runner) -> str:
        last = runner.message_hub.get_info('last_ckpt')
        return (f'the last checkpoint written is {last}'
                if last else 'no checkpoint was written')

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        bad = {
            key: _value(value)
            for key, value in (outputs or {}).items()
            if 'loss' in key and not math.isfinite(_value(value))
        }
        if bad:
            losses = ', '.join(f'{k}={v}' for k, v in bad.items())
            raise TrainingDiverged(
                f'training diverged at iteration {runner.iter + 1} (epoch '
                f'{runner.epoch + 1}): {losses}. Stopped; '
                f'{self._last_checkpoint(runner)}. Lower the learning rate, '
                'warm it up for longer, or clip gradients '
                '(optim_wrapper.clip_grad)')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        bad = non_finite_keys(checkpoint.get('state_dict', {}))
        if bad:
            raise TrainingDiverged(
                f'the weights became NaN or infinite by iteration '
                f'{runner.iter + 1}: not saving them; '
                f'{self._last_checkpoint(runner)}.\n' +
                listing('non-finite tensors', bad))
