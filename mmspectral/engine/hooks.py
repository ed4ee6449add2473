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
