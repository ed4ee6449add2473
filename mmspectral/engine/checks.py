"""Checks that stop a run early, with a message naming the problem, before
the Runner creates anything in the work dir."""
import copy
import difflib
import importlib
import json
import os.path as osp
from typing import Iterable, Iterator, List, Optional, Tuple

import torch
from mmengine.config import Config

from mmspectral.checkpoint import (CheckpointError, check_finite, check_fits,
                                   is_remote, read_checkpoint, state_dict_of)

__all__ = [
    'ConfigError', 'read_config', 'check_data_paths', 'check_type_names',
    'check_backbone_archs', 'check_checkpoint_matches', 'check_pretrained',
    'check_config'
]

TINY_DATA_HINT = ('prepare the dataset as described in the README, or make '
                  'the bundled tiny data with '
                  '`python tools/misc/make_tiny_data.py`')
# annotation files up to this size are parsed in full before a run; larger
# ones (COCO train: 450 MB) only have their ends checked
JSON_PARSE_LIMIT = 64 * 2**20


class ConfigError(ValueError):
    """A config that cannot run as it is."""


def read_config(path: str) -> Config:
    """``Config.fromfile`` with errors that name the file.

    Raises:
        FileNotFoundError: No file at ``path``.
        ConfigError: The file (or one of its bases) does not parse or
            evaluate.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file {path!r} not found')
    try:
        return Config.fromfile(path)
    except Exception as err:
        text = str(err).strip() or type(err).__name__
        if path not in text:
            text = f'{type(err).__name__}: {text}'
        raise ConfigError(f'config {path} cannot be read: {text}') from None


def leaf_dataset_cfgs(dataset_cfg) -> Iterable[dict]:
    """Datasets inside wrappers (RepeatDataset, ConcatDataset, ...)."""
    if dataset_cfg is None:
        return
    children = dataset_cfg.get('datasets') or (
        [dataset_cfg['dataset']] if 'dataset' in dataset_cfg else [])
    if children:
        for child in children:
            yield from leaf_dataset_cfgs(child)
    else:
        yield dataset_cfg


def check_json_file(path: str, what: str):
    """A JSON annotation file must be non-empty and parse (in full when it
    is at most :data:`JSON_PARSE_LIMIT` bytes, else its first and last
    characters are checked, which catches truncation)."""
    size = osp.getsize(path)
    if size == 0:
        raise ConfigError(f'{what} {path} is empty (0 bytes)')
    if size <= JSON_PARSE_LIMIT:
        try:
            with open(path, 'rb') as f:
                json.load(f)
        except (ValueError, UnicodeDecodeError) as err:
            raise ConfigError(
                f'{what} {path} is not valid JSON: {err}') from None
        return
    with open(path, 'rb') as f:
        head = f.read(64).lstrip()
        f.seek(max(0, size - 64))
        tail = f.read().rstrip()
    if not head.startswith((b'{', b'[')) or not tail.endswith((b'}', b']')):
        raise ConfigError(f'{what} {path} is not valid JSON (truncated?)')


def check_data_paths(cfg, phases: Iterable[str]):
    """Every data root, annotation file and data prefix of the
    ``{phase}_dataloader`` datasets must exist, JSON annotation files must
    parse, and batch sizes must be at least 1.

    Raises:
        ConfigError: naming the phase, dataset type and the problem.
    """
    for phase in phases:
        loader = cfg.get(f'{phase}_dataloader')
        if not loader:
            continue
        batch_size = loader.get('batch_size', 1)
        if isinstance(batch_size, bool) or not isinstance(
                batch_size, int) or batch_size < 1:
            raise ConfigError(f'{phase}_dataloader.batch_size must be an int '
                              f'>= 1, got {batch_size!r}')
        for dataset in leaf_dataset_cfgs(loader.get('dataset')):
            _check_dataset_paths(dataset, f'{phase} dataset '
                                 f'({dataset.get("type", "?")})')


def _check_dataset_paths(dataset: dict, name: str):
    root = dataset.get('data_root') or ''
    if root and not is_remote(root) and not osp.isdir(root):
        raise ConfigError(f'{name}: data root {root!r} does not exist; '
                          f'{TINY_DATA_HINT}')
    paths = []
    if dataset.get('ann_file'):
        paths.append(('annotation file', dataset['ann_file']))
    for key, prefix in (dataset.get('data_prefix') or {}).items():
        if prefix:
            paths.append((f'data_prefix.{key} folder', prefix))
    for what, path in paths:
        full = path if osp.isabs(path) else osp.join(root, path)
        if is_remote(full):
            continue
        if not osp.exists(full):
            raise ConfigError(f'{name}: {what} {full!r} does not exist; '
                              f'{TINY_DATA_HINT}')
        if what == 'annotation file' and full.endswith('.json'):
            check_json_file(full, f'{name}: annotation file')


# -- type names ---------------------------------------------------------------

# keys whose ``type`` names an op of mmcv.ops, not a registered class
# (mmdet's nms and RoI layers)
_NOT_REGISTRY_TYPES = ('nms', 'roi_layer')


def _scope_registries(scope: Optional[str]) -> list:
    """Every registry a config of ``scope`` builds from: the scope's child
    of each mmengine root registry (the root itself where the scope has
    none), and the scope library's own root registries."""
    import mmengine.registry as root
    from mmengine.registry import Registry
    modules = [root]
    if scope:
        try:
            modules.append(importlib.import_module(f'{scope}.registry'))
        except ImportError:
            pass
    registries = []
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, Registry) and value.parent is None:
                registries.append(value.children.get(scope, value))
    return registries


def _visible_names(registry) -> List[str]:
    names = []
    node = registry
    while node is not None:
        names += list(node.module_dict)
        node = node.parent
    root = registry
    while root.parent is not None:
        root = root.parent
    for child_scope, child in root.children.items():
        names += [f'{child_scope}.{name}' for name in child.module_dict]
    return names


def _typed_nodes(node, path: str, scope: Optional[str]
                 ) -> Iterator[Tuple[str, str, Optional[str]]]:
    """``(path, type name, scope)`` of every dict with a string ``type``."""
    if isinstance(node, dict):
        scope = node.get('_scope_', scope)
        if isinstance(node.get('type'), str):
            yield path, node['type'], scope
        for key, value in node.items():
            if key not in _NOT_REGISTRY_TYPES:
                yield from _typed_nodes(value, f'{path}.{key}', scope)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _typed_nodes(value, f'{path}[{i}]', scope)


def check_type_names(cfg):
    """Every ``type='Name'`` in the config must name a class that the
    config's scope can build.

    Raises:
        ConfigError: naming the entry and the unknown type, with the
            registered names closest to it.
    """
    default_scope = cfg.get('default_scope')
    registries = {}
    for key in cfg.keys():
        for path, name, scope in _typed_nodes(cfg[key], key, default_scope):
            if scope not in registries:
                registries[scope] = _scope_registries(scope)
            if any(r.get(name) is not None for r in registries[scope]):
                continue
            names = sorted({n for r in registries[scope]
                            for n in _visible_names(r)})
            hint = [n for n in names if n.split('.')[-1] == name] or \
                difflib.get_close_matches(name, names, n=5, cutoff=0.6)
            raise ConfigError(
                f'{path}: unknown type {name!r} in the {scope or "mmengine"} '
                'scope' + (f'; did you mean {" or ".join(map(repr, hint))}?'
                           if hint else ''))


def check_backbone_archs(cfg):
    """Resolve the ``arch`` of every mmspectral model in the config's
    ``model``, in the config's own scope, so an unknown arch stops the run
    with the list of valid ones."""
    from mmengine.registry import MODELS

    from mmspectral.models.backbones.base import SpectralBackbone
    scope = cfg.get('default_scope')
    with MODELS.switch_scope_and_registry(scope) as registry:
        for _, name, _ in _typed_nodes(cfg.get('model', {}), 'model', scope):
            cls = registry.get(name)
            if isinstance(cls, type) and issubclass(cls, SpectralBackbone):
                for node in _dicts_of_type(cfg.model, name):
                    if 'arch' in node:
                        cls.check_arch(node['arch'])


def _dicts_of_type(node, name: str) -> Iterator[dict]:
    if isinstance(node, dict):
        if node.get('type') == name:
            yield node
        for value in node.values():
            yield from _dicts_of_type(value, name)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _dicts_of_type(value, name)


def check_config(cfg, phases: Iterable[str]):
    """The checks a run needs before the Runner starts."""
    check_type_names(cfg)
    check_backbone_archs(cfg)
    check_data_paths(cfg, phases)
    path = cfg.get('load_from')
    if path and not is_remote(path) and not osp.isfile(path):
        raise ConfigError(f'load_from: checkpoint {path!r} does not exist')


# -- checkpoints --------------------------------------------------------------

def check_checkpoint_matches(model: torch.nn.Module,
                             path: str,
                             allow_missing: bool = False,
                             what: str = 'the model',
                             resume_cfg: Optional[Config] = None) -> dict:
    """Raise :class:`CheckpointError` unless the checkpoint at ``path`` is
    readable, finite and made for ``model``: no shape that differs, no key
    the model lacks, and (unless ``allow_missing``) no model key missing.
    With ``resume_cfg`` (a run to resume) its optimizer state must also fit
    the parameter groups of that config's optimizer. Returns its state
    dict."""
    checkpoint = read_checkpoint(path)
    state = state_dict_of(checkpoint, path)
    check_fits(model.state_dict(), state, what, path,
               missing_ok=allow_missing)
    check_finite(state, path)
    if resume_cfg is not None:
        _check_optimizer_groups(model, checkpoint, path, resume_cfg, what)
    return state


def _param_group_sizes(optimizer_state) -> Optional[List[int]]:
    groups = (optimizer_state or {}).get('param_groups') if isinstance(
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


def check_pretrained(model: torch.nn.Module):
    """Load the ``init_cfg=dict(type='Pretrained')`` checkpoint of every
    mmspectral backbone in ``model`` (a throwaway copy of the run's model),
    so that a missing, unreadable or unfit one stops the run before the
    Runner starts."""
    from mmspectral.models.backbones.base import SpectralBackbone
    for module in model.modules():
        cfg = getattr(module, 'init_cfg', None)
        if isinstance(module, SpectralBackbone) and isinstance(
                cfg, dict) and cfg.get('type') == 'Pretrained':
            module.load_pretrained(cfg['checkpoint'], cfg.get('prefix'))
