"""The Runner of the tools, and the model of a config.

The tools build the model once, before the Runner: the pre-run checks
(pretrained, ``load_from``, test and resume checkpoints) look at that
model and the checkpoints they read, and :class:`ToolRunner` then takes
both over instead of building the model and reading the files again.
"""
import copy
import inspect
import os.path as osp
import random
from collections import OrderedDict
from typing import Dict, Optional

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dist import master_only
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import DATASETS, MODELS, DefaultScope
from mmengine.runner import Runner, load_state_dict, set_random_seed

from mmspectral.checkpoint import state_dict_of
from .checks import leaf_dataset_cfgs
from .data_checks import empty_dataset_error, leaf_datasets

__all__ = ['ToolRunner', 'build_runner', 'build_model', 'build_run_model']


def build_model(cfg: Config):
    """The config's model, built in its default scope as the Runner builds
    it (with the top-level ``data_preprocessor`` where the model has
    none), without creating anything on disk."""
    model = dict(cfg.model)
    if cfg.get('data_preprocessor') is not None:
        model.setdefault('data_preprocessor', cfg.data_preprocessor)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        return MODELS.build(model)


def _rng_states() -> dict:
    states = dict(torch=torch.get_rng_state(), numpy=np.random.get_state(),
                  random=random.getstate())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict):
    torch.set_rng_state(states['torch'])
    np.random.set_state(states['numpy'])
    random.setstate(states['random'])
    if 'cuda' in states:
        torch.cuda.set_rng_state_all(states['cuda'])


def build_run_model(cfg: Config, rank: int = 0):
    """The model of a run, built as the Runner would build it: after
    seeding the generators with ``cfg.randomness`` (``rank`` is added with
    ``diff_rank_seed``).

    Returns:
        tuple: The model and the generators' states after building it
        (None without a seed), for :class:`ToolRunner` to continue from.
    """
    randomness = dict(cfg.get('randomness') or {})
    seed = randomness.get('seed')
    if seed is None:  # the Runner draws a seed; nothing to reproduce
        return build_model(cfg), None
    set_random_seed(seed + rank if randomness.get('diff_rank_seed') else
                    seed, deterministic=randomness.get('deterministic',
                                                       False))
    model = build_model(cfg)
    return model, _rng_states()


class ToolRunner(Runner):
    """mmengine's Runner with what the tools add.

    * It takes the model the tools built and checked (and, with a seed,
      the random generators' states right after building it, so that
      everything later draws as in a Runner that built the model itself).
    * It loads the checkpoints the tools read and checked from memory
      (``read_checkpoints``, by path) instead of reading them again.
    * The config dump goes to ``work_dir/<config name>`` only if that file
      is absent or identical; otherwise (another run's record, a test run
      in a training work dir) into the run's timestamped log folder, so no
      earlier record is overwritten.
    * A dataset without samples is an error naming it (mmengine fails to
      serialise an empty data list, and an infinite sampler over one would
      wait forever).

    Args:
        read_checkpoints (dict, optional): Checkpoints already read, by
            the path the config names them with.
        rng_after_model (dict, optional): Generator states to continue
            from once the model is in place.
        **kwargs: The Runner's arguments.
    """

    def __init__(self, *args,
                 read_checkpoints: Optional[Dict[str, dict]] = None,
                 rng_after_model: Optional[dict] = None, **kwargs):
        self._read_checkpoints = dict(read_checkpoints or {})
        self._rng_after_model = rng_after_model
        super().__init__(*args, **kwargs)

    def build_model(self, model):
        if self._rng_after_model is not None:
            _set_rng_states(self._rng_after_model)
            self._rng_after_model = None
        return super().build_model(model)

    def load_checkpoint(self, filename: str, map_location='cpu',
                        strict: bool = False,
                        revise_keys=[(r'^module.', '')]):
        checkpoint = self._read_checkpoints.pop(filename, None)
        if checkpoint is None:
            return super().load_checkpoint(filename, map_location, strict,
                                           revise_keys)
        # what Runner.load_checkpoint does after reading the file; the
        # checks have made sure the weights fit (keys without 'module.')
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) else \
            self.model
        state = state_dict_of(checkpoint, filename)
        # the modules' versions, which their loading reads
        state._metadata = getattr(checkpoint.get('state_dict'), '_metadata',
                                  None) or OrderedDict()
        load_state_dict(model, state, strict, logger=self.logger)
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    @staticmethod
    def build_dataloader(dataloader, seed=None, diff_rank_seed=False):
        try:
            loader = Runner.build_dataloader(
                dataloader, seed=seed, diff_rank_seed=diff_rank_seed)
        except ValueError:
            dataset = dataloader.get('dataset') if isinstance(
                dataloader, dict) else None
            if isinstance(dataset, dict) and _has_empty_leaf(dataset):
                raise empty_dataset_error(dataset) from None
            raise
        if len(loader.dataset) == 0:
            raise empty_dataset_error(loader.dataset)
        return loader

    @master_only
    def dump_config(self) -> None:
        name = osp.basename(self.cfg.filename) if self.cfg.filename else \
            f'{self.timestamp}.py'
        target = osp.join(self.work_dir, name)
        text = self.cfg.dump()
        if osp.isfile(target):
            with open(target, encoding='utf-8') as f:
                if f.read() == text:
                    return
            target = osp.join(self.log_dir, name)
            print_log(f'{osp.join(self.work_dir, name)} records another run;'
                      f' this run\'s config is in {target}', logger='current')
        with open(target, 'w', encoding='utf-8') as f:
            f.write(text)


def _has_empty_leaf(dataset_cfg: dict) -> bool:
    """Whether a dataset of ``dataset_cfg`` holds no sample: each one is
    built again without serialising its data list (mmengine raises a
    ValueError of numpy's when serialising an empty list, which says
    nothing about the dataset; only then is this asked)."""
    for leaf in leaf_dataset_cfgs(dataset_cfg):
        try:
            built = DATASETS.build(dict(leaf, serialize_data=False))
        except Exception:
            continue
        if any(len(d) == 0 for d in leaf_datasets(built)):
            return True
    return False


def _runner_arguments(cfg: Config) -> dict:
    """The Runner's keyword arguments from the config, as
    ``Runner.from_cfg`` takes them (every parameter of ``Runner.__init__``
    that the config has)."""
    names = inspect.signature(Runner.__init__).parameters
    return {
        name: cfg[name]
        for name in names if name not in ('self', 'cfg') and name in cfg
    }


def build_runner(cfg: Config, model: Optional[torch.nn.Module] = None,
                 rng_after_model: Optional[dict] = None,
                 read_checkpoints: Optional[Dict[str, dict]] = None
                 ) -> Runner:
    """The run's :class:`ToolRunner`.

    Args:
        cfg (Config): The config (copied; the copy is what the run
            records).
        model (nn.Module, optional): The model, already built (see
            :func:`build_run_model`); built from the config if None.
        rng_after_model (dict, optional): The generators' states after
            building ``model``.
        read_checkpoints (dict, optional): Checkpoints already read.

    Raises:
        ValueError: The config names a ``runner_type`` (the tools' Runner
            cannot be combined with another one).
    """
    if cfg.get('runner_type') not in (None, 'Runner'):
        raise ValueError(
            f'runner_type={cfg.runner_type!r}: the tools run configs with '
            "mmengine's Runner only (they add their checks to it); use "
            "the library's own tools/train.py for another Runner")
    cfg = copy.deepcopy(cfg)
    arguments = _runner_arguments(cfg)
    if model is not None:
        arguments['model'] = model
    return ToolRunner(
        cfg=cfg,
        read_checkpoints=read_checkpoints,
        rng_after_model=rng_after_model,
        **arguments)
