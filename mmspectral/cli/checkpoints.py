"""Checks of the checkpoints a run starts from, each read once: the
checked checkpoint is handed to the Runner (see
:class:`mmspectral.cli.runner.ToolRunner`), which does not read it again."""
import copy
import os.path as osp
from numbers import Integral
from typing import List, Optional

import torch
from mmengine.config import Config

from mmspectral.checkpoint import (CheckpointError, check_finite, check_fits,
                                   read_checkpoint, state_dict_of)
from mmspectral.engine import ExactResumeHook

__all__ = [
    'check_checkpoint_matches', 'check_resume_argument',
    'check_resume_checkpoint',
    'check_pretrained', 'schedule_end'
]


def check_checkpoint_matches(model: torch.nn.Module,
                             path: str,
                             allow_missing: bool = False,
                             what: str = 'the model') -> dict:
    """Read the checkpoint at ``path`` and raise :class:`CheckpointError`
    unless it is finite and made for ``model``: no shape that differs, no
    key the model lacks, and (unless ``allow_missing``) no model key
    missing.

    Returns:
        dict: The checkpoint, as read (a bare state dict is returned as
        ``{'state_dict': ...}``).
    """
    checkpoint = read_checkpoint(path)
    state = state_dict_of(checkpoint, path)
    check_fits(model.state_dict(), state, what, path,
               missing_ok=allow_missing)
    check_finite(state, path)
    if not (isinstance(checkpoint, dict) and 'state_dict' in checkpoint):
        checkpoint = dict(state_dict=state)
    return checkpoint


def schedule_end(cfg: Config):
    """``('iter', max_iters)`` or ``('epoch', max_epochs)`` of the config's
    training loop (None if it names neither)."""
    train_cfg = cfg.get('train_cfg') or {}
    loop = str(train_cfg.get('type', ''))
    by_epoch = train_cfg.get('by_epoch', 'Epoch' in loop or (
        'max_epochs' in train_cfg and 'max_iters' not in train_cfg))
    key = 'max_epochs' if by_epoch else 'max_iters'
    if isinstance(train_cfg.get(key), Integral):
        return ('epoch' if by_epoch else 'iter'), int(train_cfg[key])
    return None


def _check_progress(meta: dict, path: str, cfg: Config):
    """The epoch and iteration a run resumes at must be counts inside the
    config's schedule."""
    for key in ('epoch', 'iter'):
        value = meta.get(key)
        if isinstance(value, bool) or not isinstance(value, Integral) or \
                value < 0:
            raise CheckpointError(
                f"{path}: meta['{key}'] is {value!r}, not a count of "
                f'{key}s done: the checkpoint is corrupt or was not written '
                'by an mmengine training run')
    end = schedule_end(cfg)
    if end is None:
        return
    unit, total = end
    done = meta[unit]
    if done >= total:
        raise CheckpointError(
            f'{path} is at {unit} {done}, and the schedule ends at '
            f'max_{unit}s={total}: the run is complete, nothing is left to '
            f'train. To train longer, raise train_cfg.max_{unit}s')


def _param_group_sizes(optimizer_state) -> Optional[List[int]]:
    groups = optimizer_state.get('param_groups') if isinstance(
        optimizer_state, dict) else None
    if not isinstance(groups, list):
        return None
    return [len(group.get('params', ())) for group in groups]


def _check_optimizer_groups(model, checkpoint, path, cfg, what):
    saved = _param_group_sizes(checkpoint.get('optimizer'))
    if saved is None or 'optim_wrapper' not in cfg:
        return
    from mmengine.optim import OptimWrapper, build_optim_wrapper
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    if not isinstance(wrapper, OptimWrapper):  # several optimizers
        return
    ours = [len(group['params']) for group in wrapper.optimizer.param_groups]
    if ours != saved:
        raise CheckpointError(
            f'{path} was saved by a run with another optimizer setup than '
            f'{what} ({len(saved)} parameter groups of {saved} parameters, '
            f'here {len(ours)} of {ours}): was it made by another config? '
            'Resume it with its own config, or give this run another '
            '--work-dir')


def check_resume_argument(resume: Optional[str]):
    """``--resume`` takes a checkpoint file (or nothing: the latest in the
    work dir), not a folder."""
    if resume not in (None, 'auto') and osp.isdir(resume):
        raise CheckpointError(
            f'--resume {resume} is a folder: give a checkpoint file in it, or '
            '--resume alone with --work-dir to continue from the latest '
            'checkpoint of a work dir')


def check_resume_checkpoint(model: torch.nn.Module, path: str, cfg: Config,
                            what: str = 'the model',
                            checkpoint: Optional[dict] = None) -> dict:
    """Read the checkpoint a run resumes from and check that it can be
    resumed: a training state (``meta`` with the epoch and iteration
    inside the config's schedule, ``message_hub``, optimizer state of the
    config's parameter groups, a restorable ``rng_state`` if any) and
    weights that fit ``model`` and are finite.

    Args:
        checkpoint (dict, optional): The checkpoint, if already read.

    Returns:
        dict: The checkpoint, as read.

    Raises:
        CheckpointError: naming the file and what it lacks or holds wrong.
    """
    if checkpoint is None:
        checkpoint = read_checkpoint(path)
    if not isinstance(checkpoint, dict) or not isinstance(
            checkpoint.get('state_dict'), dict):
        raise CheckpointError(
            f'{path} holds weights only, no training state: it cannot be '
            'resumed. Fine-tune from it with '
            f'--cfg-options load_from={path} (without --resume)')
    missing = [key for key in ('meta', 'message_hub', 'optimizer')
               if key not in checkpoint]
    if missing:
        raise CheckpointError(
            f'{path} lacks {" and ".join(missing)}: it was saved without '
            'its training state (save_optimizer=False, or weights '
            'published for fine-tuning) and cannot be resumed. Fine-tune '
            f'from it with --cfg-options load_from={path} instead')
    if not isinstance(checkpoint['meta'], dict):
        raise CheckpointError(f"{path}: 'meta' is not a dict")
    state = state_dict_of(checkpoint, path)
    check_fits(model.state_dict(), state, what, path)
    check_finite(state, path)
    if 'rng_state' in checkpoint:
        try:
            ExactResumeHook.check_state(checkpoint['rng_state'])
        except ValueError as err:
            raise CheckpointError(
                f'{path}: {err}; the checkpoint is corrupt (remove its '
                "'rng_state' to resume without exact random generators)"
            ) from None
    _check_optimizer_groups(model, checkpoint, path, cfg, what)
    # last: a checkpoint of another model is named as such first
    _check_progress(checkpoint['meta'], path, cfg)
    return checkpoint


def check_pretrained(model: torch.nn.Module):
    """Load the ``init_cfg=dict(type='Pretrained')`` checkpoint of every
    mmspectral backbone in ``model``, so that a missing, unreadable or
    unfit one stops the run before the Runner starts. (The Runner loads it
    again when it initialises the weights.)"""
    from mmspectral.models.backbones.base import SpectralBackbone
    for module in model.modules():
        cfg = getattr(module, 'init_cfg', None)
        if isinstance(module, SpectralBackbone) and isinstance(
                cfg, dict) and cfg.get('type') == 'Pretrained':
            module.load_pretrained(cfg['checkpoint'], cfg.get('prefix'))
