"""Checks that stop a run early, with a message naming the problem, before
the Runner creates anything in the work dir."""
import os.path as osp
from typing import Dict, Iterable, List

import torch
from mmengine.runner.checkpoint import _load_checkpoint

from mmspectral.converters.common import CheckpointError
from mmspectral.registry import MODELS

__all__ = [
    'ConfigError', 'check_data_paths', 'check_backbone_archs',
    'check_checkpoint_matches', 'check_config'
]

TINY_DATA_HINT = ('prepare the dataset as described in the README, or make '
                  'the bundled tiny data with '
                  '`python tools/misc/make_tiny_data.py`')


class ConfigError(ValueError):
    """A config that cannot run as it is."""


def _leaf_datasets(dataset_cfg) -> Iterable[dict]:
    """Datasets inside wrappers (RepeatDataset, ConcatDataset, ...)."""
    if dataset_cfg is None:
        return
    children = dataset_cfg.get('datasets') or (
        [dataset_cfg['dataset']] if 'dataset' in dataset_cfg else [])
    if children:
        for child in children:
            yield from _leaf_datasets(child)
    else:
        yield dataset_cfg


def _is_remote(path: str) -> bool:
    return '://' in path


def check_data_paths(cfg, phases: Iterable[str]):
    """Every data root, annotation file and data prefix of the
    ``{phase}_dataloader`` datasets must exist.

    Raises:
        ConfigError: naming the phase, dataset type and missing path.
    """
    for phase in phases:
        loader = cfg.get(f'{phase}_dataloader')
        if not loader:
            continue
        for dataset in _leaf_datasets(loader.get('dataset')):
            name = f'{phase} dataset ({dataset.get("type", "?")})'
            root = dataset.get('data_root') or ''
            if root and not _is_remote(root) and not osp.isdir(root):
                raise ConfigError(f'{name}: data root {root!r} does not '
                                  f'exist; {TINY_DATA_HINT}')
            paths = []
            if dataset.get('ann_file'):
                paths.append(('annotation file', dataset['ann_file']))
            for key, prefix in (dataset.get('data_prefix') or {}).items():
                if prefix:
                    paths.append((f'data_prefix.{key} folder', prefix))
            for what, path in paths:
                full = path if osp.isabs(path) else osp.join(root, path)
                if not _is_remote(full) and not osp.exists(full):
                    raise ConfigError(f'{name}: {what} {full!r} does not '
                                      f'exist; {TINY_DATA_HINT}')


def _dicts(node) -> Iterable[dict]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _dicts(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _dicts(value)


def check_backbone_archs(model_cfg):
    """Resolve the ``arch`` of every mmspectral model in ``model_cfg``, so an
    unknown arch stops the run with the list of valid ones."""
    from mmspectral.models.backbones.base import SpectralBackbone
    for node in _dicts(model_cfg):
        type_name = node.get('type')
        if not isinstance(type_name, str) or 'arch' not in node:
            continue
        cls = MODELS.get(type_name)
        if isinstance(cls, type) and issubclass(cls, SpectralBackbone):
            cls.check_arch(node['arch'])


def check_config(cfg, phases: Iterable[str]):
    """The checks a run needs before the Runner starts."""
    check_backbone_archs(cfg.get('model', {}))
    check_data_paths(cfg, phases)
    for key in ('load_from', ):
        path = cfg.get(key)
        if path and not _is_remote(path) and not osp.isfile(path):
            raise ConfigError(f'{key}: checkpoint {path!r} does not exist')


def _state_dict_of(checkpoint) -> Dict[str, torch.Tensor]:
    state = checkpoint.get('state_dict', checkpoint) if isinstance(
        checkpoint, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError('the file holds no state dict')
    return {(k[7:] if k.startswith('module.') else k): v
            for k, v in state.items()}


def _listing(title: str, items: List[str]) -> str:
    shown = ', '.join(items[:6]) + (' ...' if len(items) > 6 else '')
    return f'  {title} ({len(items)}): {shown}'


def check_checkpoint_matches(model: torch.nn.Module, path: str,
                             allow_missing: bool = False,
                             what: str = 'the model'):
    """Raise :class:`CheckpointError` if the checkpoint at ``path`` was made
    for another architecture: shapes that differ, keys the model does not
    have, or (unless ``allow_missing``) model keys it lacks."""
    try:
        state = _state_dict_of(_load_checkpoint(path, map_location='cpu'))
    except FileNotFoundError:
        raise
    except CheckpointError as err:
        raise CheckpointError(f'{path}: {err}') from err
    except Exception as err:
        raise CheckpointError(
            f'{path} is not a readable checkpoint: {err}') from err
    own = model.state_dict()
    mismatched = [
        f'{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}'
        for k in own if k in state and state[k].shape != own[k].shape
    ]
    unexpected = [k for k in state if k not in own]
    missing = [] if allow_missing else [
        k for k in own if k not in state and 'num_batches_tracked' not in k
    ]
    if mismatched or unexpected or missing:
        lines = [f'checkpoint {path} does not match {what} (was it made '
                 'for another arch or config?):']
        for title, items in (('shape mismatches (checkpoint vs model)',
                              mismatched), ('keys the model does not have',
                                            unexpected),
                             ('model keys missing from the checkpoint',
                              missing)):
            if items:
                lines.append(_listing(title, items))
        raise CheckpointError('\n'.join(lines))
