"""Hooks the tool tests add to their configs (through custom_imports)."""
import os
import os.path as osp
import signal

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class DumpRankWeightsHook(Hook):
    """Save every rank's parameters after training."""

    def __init__(self, out_dir):
        self.out_dir = out_dir

    def after_train(self, runner):
        model = getattr(runner.model, 'module', runner.model)
        weights = {k: v.detach() for k, v in model.named_parameters()}
        torch.save(weights, osp.join(self.out_dir, f'rank{runner.rank}.pth'))


@HOOKS.register_module()
class KillAtIterHook(Hook):
    """SIGKILL the process after the given (1-based) iteration."""

    def __init__(self, iteration):
        self.iteration = iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.iteration:
            os.kill(os.getpid(), signal.SIGKILL)
