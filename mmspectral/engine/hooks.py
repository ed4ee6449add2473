import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.runner import IterBasedTrainLoop

from mmspectral.registry import HOOKS


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
