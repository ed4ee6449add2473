"""Checks that stop a run early, with a message naming the problem, before
the Runner creates anything in the work dir."""
import difflib
import importlib
import json
import logging
import math
import os.path as osp
import re
from numbers import Real
from typing import Iterable, Iterator, List, Optional, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

from mmspectral.checkpoint import is_remote

__all__ = [
    'ConfigError', 'read_config', 'check_data_paths', 'check_type_names',
    'check_backbone_archs', 'check_rates', 'check_config',
    'check_coco_annotations'
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
    characters are checked, which catches truncation); the annotations of
    a COCO file read in full are checked too
    (:func:`check_coco_annotations`)."""
    size = osp.getsize(path)
    if size == 0:
        raise ConfigError(f'{what} {path} is empty (0 bytes)')
    if size <= JSON_PARSE_LIMIT:
        try:
            with open(path, 'rb') as f:
                content = json.load(f)
        except (ValueError, UnicodeDecodeError) as err:
            raise ConfigError(
                f'{what} {path} is not valid JSON: {err}') from None
        if isinstance(content, dict) and isinstance(
                content.get('annotations'), list):
            check_coco_annotations(content['annotations'], path)
        return
    with open(path, 'rb') as f:
        head = f.read(64).lstrip()
        f.seek(max(0, size - 64))
        tail = f.read().rstrip()
    if not head.startswith((b'{', b'[')) or not tail.endswith((b'}', b']')):
        raise ConfigError(f'{what} {path} is not valid JSON (truncated?)')


def _finite_numbers(values) -> bool:
    return isinstance(values, list) and all(
        isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v)
        for v in values)


def _ids(anns: List[dict]) -> str:
    shown = ', '.join(str(ann.get('id', '?')) for ann in anns[:6])
    return f'ids {shown}{" ..." if len(anns) > 6 else ""}'


def check_coco_annotations(annotations: List[dict], path: str):
    """Boxes and polygons of COCO annotations must be finite numbers.

    Raises:
        ConfigError: Annotations with a NaN or infinite (or non-numeric)
            box or polygon, counted and named by id: mmdet would train on
            them (a NaN box gives a zero loss, a NaN polygon a garbage
            mask).

    Boxes of zero or negative width or height are counted and named in a
    warning: mmdet leaves them out of training and evaluation.
    """
    broken, empty = [], []
    for ann in annotations:
        if not isinstance(ann, dict):
            continue
        box = ann.get('bbox')
        polygons = ann.get('segmentation')
        if isinstance(polygons, dict):  # RLE
            polygons = []
        if not (_finite_numbers(box) and len(box) == 4) or not all(
                _finite_numbers(p) for p in polygons or []):
            broken.append(ann)
        elif box[2] <= 0 or box[3] <= 0:
            empty.append(ann)
    if broken:
        raise ConfigError(
            f'annotation file {path}: {len(broken)} annotation(s) with a '
            f'NaN, infinite or non-numeric box or polygon ({_ids(broken)}; '
            f'the first: bbox={broken[0].get("bbox")}); fix or remove them')
    if empty:
        print_log(
            f'annotation file {path}: {len(empty)} box(es) of zero or '
            f'negative width or height ({_ids(empty)}), which mmdet leaves '
            'out of training and evaluation',
            logger='current', level=logging.WARNING)


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


# probabilities of the model config: dropout, drop path, ...
_RATE_KEY = re.compile(r'drop.*_(rate|ratio|prob)$')


def check_rates(cfg):
    """Every drop / drop-path rate of the model must be a number in
    ``[0, 1)`` (``drop_path_rate=2.0`` would otherwise surface as a NaN
    loss, reported as divergence), and the learning rate a finite number
    ``>= 0``.

    Raises:
        ConfigError: naming the entry and its value.
    """
    for path, key, value in _entries(cfg.get('model', {}), 'model'):
        if _RATE_KEY.search(key) and value is not None and not (
                isinstance(value, Real) and not isinstance(value, bool)
                and 0 <= value < 1):
            raise ConfigError(f'{path} must be a probability in [0, 1), got '
                              f'{value!r}')
    optimizer = (cfg.get('optim_wrapper') or {}).get('optimizer') or {}
    lr = optimizer.get('lr') if isinstance(optimizer, dict) else None
    if lr is not None and not (isinstance(lr, Real) and math.isfinite(lr)
                               and lr >= 0):
        raise ConfigError(f'optim_wrapper.optimizer.lr must be a finite '
                          f'number >= 0, got {lr!r}')


def _entries(node, path: str):
    """``(path, key, value)`` of every non-container entry of ``node``."""
    items = node.items() if isinstance(node, dict) else enumerate(node) \
        if isinstance(node, (list, tuple)) else ()
    for key, value in items:
        child = f'{path}.{key}' if isinstance(key, str) else f'{path}[{key}]'
        if isinstance(value, (dict, list, tuple)):
            yield from _entries(value, child)
        else:
            yield child, str(key), value


def check_config(cfg, phases: Iterable[str]):
    """The checks a run needs before the Runner starts."""
    check_type_names(cfg)
    check_backbone_archs(cfg)
    check_rates(cfg)
    check_data_paths(cfg, phases)
    path = cfg.get('load_from')
    if path and not is_remote(path) and not osp.isfile(path):
        raise ConfigError(f'load_from: checkpoint {path!r} does not exist')
