"""What tools/train.py and tools/test.py set up in a config before a run:
arguments, config loading, AMP, the hooks every run gets and the
per-library output options (the config's ``default_scope`` decides)."""
import argparse
import contextlib
import difflib
import inspect
import logging
import os
import os.path as osp
import sys

import torch
from mmengine.config import Config
from mmengine.config import DictAction as _MMEngineDictAction
from mmengine.logging import print_log
from mmengine.runner import Runner

from .checks import ConfigError, read_config
from .data_checks import name_failing_samples

__all__ = [
    'DictAction', 'add_run_arguments', 'reported_errors', 'error_message',
    'check_output_path', 'check_distinct_outputs', 'load_config',
    'check_option_keys', 'enable_amp', 'fit_amp_to_device',
    'add_custom_hook', 'add_run_hooks', 'add_exact_resume',
    'bound_cufft_plan_cache', 'enable_visualization', 'add_prediction_dump'
]


class DictAction(_MMEngineDictAction):
    """mmengine's ``--cfg-options`` parsing, with a usage error (not a
    traceback) for an option without ``=VALUE``."""

    def __call__(self, parser, namespace, values, option_string=None):
        for item in values if isinstance(values, list) else [values]:
            key, sep, _ = item.partition('=')
            if not sep or not key:
                raise argparse.ArgumentError(
                    self, f'{item!r} is not KEY=VALUE (e.g. '
                    'train_cfg.max_iters=100)')
        super().__call__(parser, namespace, values, option_string)


class _LocalRankAction(argparse.Action):

    def __call__(self, parser, namespace, value, option_string=None):
        setattr(namespace, self.dest, value)
        os.environ.setdefault('LOCAL_RANK', str(value))


def add_run_arguments(parser: argparse.ArgumentParser):
    """The arguments tools/train.py and tools/test.py share: ``config``,
    ``--work-dir``, ``--cfg-options``, ``--launcher`` and ``--local_rank``
    (older launchers pass it; it becomes ``LOCAL_RANK``)."""
    parser.add_argument('config', help='config file')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. train_cfg.max_iters=100')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm'],
        default='none',
        help='job launcher')
    parser.add_argument(
        '--debug',
        action='store_true',
        help='show the full traceback of an error, not only its message')
    parser.add_argument(
        '--local_rank',
        '--local-rank',
        type=int,
        default=0,
        action=_LocalRankAction)


def error_message(err: BaseException) -> str:
    """The message of ``err`` without the traceback text a DataLoader
    worker wraps around it."""
    text = str(err).strip()
    if 'Original Traceback' in text:
        last = text.splitlines()[-1]
        prefix = f'{type(err).__name__}: '
        text = last.split(prefix, 1)[-1] if prefix in last else last
    return text or type(err).__name__


@contextlib.contextmanager
def reported_errors(debug: bool = False):
    """Turn an error into ``error: <message>`` on stderr and exit status 1,
    with the traceback only when ``debug``."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as err:
        if debug:
            raise
        text = error_message(err)
        ours = type(err).__module__.startswith('mmspectral') or isinstance(
            err, (OSError, ValueError))
        if not ours:
            text = (f'{type(err).__name__}: {text} (run with --debug for '
                    'the traceback)')
        sys.exit(f'error: {text}')


def check_distinct_outputs(**outputs):
    """No two outputs of a tool may be the same file (``--out X
    --dump-metrics X`` would write one over the other).

    Args:
        **outputs: Option name (``out``, ``dump_metrics``) -> path or None.
    """
    seen = {}
    for option, path in outputs.items():
        if not path:
            continue
        flag = '--' + option.replace('_', '-')
        real = osp.realpath(path)
        if real in seen:
            raise ValueError(f'{seen[real]} and {flag} name the same file '
                             f'{path}: give each its own')
        seen[real] = flag


def check_output_path(path: str, option: str, folder: bool = False):
    """An output of the run must not destroy anything: its folder must exist
    and the file must not (a ``folder`` output may exist only empty)."""
    if folder:
        if osp.isdir(path) and os.listdir(path):
            raise FileExistsError(
                f'{option}: {path} exists and is not empty; give another '
                'folder or remove it')
        return
    parent = osp.dirname(osp.abspath(path))
    if not osp.isdir(parent):
        raise FileNotFoundError(
            f'{option}: the folder {parent} does not exist')
    if osp.exists(path):
        raise FileExistsError(
            f'{option}: {path} exists; give another path or remove it')
    if not os.access(parent, os.W_OK):
        raise PermissionError(f'{option}: cannot write to {parent}')


# top-level keys a config may add that are not Runner arguments
_KNOWN_KEYS = ('runner_type', 'model_wrapper_cfg', 'find_unused_parameters',
               'custom_imports', 'gpu_ids', 'dist_params', 'work_dir')


def check_option_keys(cfg: Config, cfg_options: dict):
    """Each ``--cfg-options`` key must start with a top-level key of the
    config or an argument of mmengine's Runner: a typo
    (``trian_cfg.max_iters=2``) would otherwise add an entry nothing reads.

    Raises:
        ConfigError: naming the key, with the closest known ones.
    """
    known = set(cfg.keys()) | set(_KNOWN_KEYS) | set(
        inspect.signature(Runner.__init__).parameters) - {'self', 'cfg'}
    for key in cfg_options:
        top = key.split('.')[0]
        if top in known:
            continue
        close = difflib.get_close_matches(top, sorted(known), n=3,
                                          cutoff=0.6)
        raise ConfigError(
            f'--cfg-options {key}: {top!r} is not a top-level key of the '
            'config nor a Runner argument, so nothing would read it' +
            (f'; did you mean {" or ".join(map(repr, close))}?'
             if close else ''))


def load_config(path: str, cfg_options=None, work_dir=None,
                launcher='none') -> Config:
    """Read ``path``, apply ``--cfg-options`` (see
    :func:`check_option_keys`), set the work dir (default
    ``./work_dirs/<config name>``) and the launcher."""
    cfg = read_config(path)
    if cfg_options:
        check_option_keys(cfg, cfg_options)
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(path))[0])
    cfg.launcher = launcher
    return cfg


def enable_amp(cfg: Config):
    """Automatic mixed precision through mmengine's AmpOptimWrapper."""
    wrapper = cfg.optim_wrapper
    if wrapper.get('type') == 'AmpOptimWrapper':
        return
    wrapper.type = 'AmpOptimWrapper'
    wrapper.setdefault('loss_scale', 'dynamic')


def fit_amp_to_device(cfg: Config) -> bool:
    """mmengine's AmpOptimWrapper needs CUDA. Without it, train in float32
    and say so, rather than fail: returns True if AMP was turned off."""
    wrapper = cfg.get('optim_wrapper', {})
    if wrapper.get('type') != 'AmpOptimWrapper' or torch.cuda.is_available():
        return False
    wrapper.type = 'OptimWrapper'
    for key in ('loss_scale', 'dtype', 'use_fsdp'):
        wrapper.pop(key, None)
    print_log(
        'AMP needs CUDA, which this machine lacks: training in float32',
        logger='current', level=logging.WARNING)
    return True


def add_custom_hook(cfg: Config, hook: dict):
    """Append ``hook`` to the config's custom hooks unless one of its type is
    configured already (that one, with its arguments, is kept)."""
    def type_name(hook_type) -> str:  # 'scope.Name', 'Name' or a class
        return getattr(hook_type, '__name__', str(hook_type)).split('.')[-1]

    hooks = list(cfg.get('custom_hooks') or [])
    name = type_name(hook['type'])
    if not any(type_name(h.get('type')) == name for h in hooks):
        hooks.append(hook)
    cfg.custom_hooks = hooks


def add_run_hooks(cfg: Config, train: bool):
    """What every run of the tools gets: :class:`DataCheckHook` (label
    ids), :class:`CuFFTPlanCacheHook`, :class:`FiniteCheckHook` (stops at a
    NaN/inf loss, weight or prediction) and, for training,
    :class:`ExactResumeHook`; and data pipelines that name the sample they
    fail on (:func:`name_failing_samples`)."""
    add_custom_hook(cfg, dict(type='mmspectral.DataCheckHook'))
    bound_cufft_plan_cache(cfg)
    add_custom_hook(cfg, dict(type='mmspectral.FiniteCheckHook'))
    if train:
        add_exact_resume(cfg)
    name_failing_samples(cfg, ('train', 'val', 'test') if train else
                         ('test', ))


def add_exact_resume(cfg: Config):
    """Add :class:`ExactResumeHook` (random generator states in checkpoints)
    unless the config has it already."""
    add_custom_hook(cfg, dict(type='mmspectral.ExactResumeHook'))


def bound_cufft_plan_cache(cfg: Config):
    """Add :class:`CuFFTPlanCacheHook` with its default bound unless the
    config has it already."""
    add_custom_hook(cfg, dict(type='mmspectral.CuFFTPlanCacheHook'))


def enable_visualization(cfg: Config, show_dir: str):
    """Draw every test prediction into ``show_dir`` with the library's own
    visualization hook."""
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise ValueError('--show-dir needs a `visualization` entry in the '
                         "config's default_hooks")
    scope = cfg.get('default_scope')
    if scope == 'mmdet':
        hook.update(draw=True, test_out_dir=osp.abspath(show_dir))
    elif scope == 'mmseg':
        hook.update(draw=True, interval=1)
        cfg.visualizer['save_dir'] = show_dir
    elif scope == 'mmpretrain':
        hook.update(enable=True, interval=1, out_dir=show_dir)
    else:
        raise ValueError(f'--show-dir: unsupported default_scope {scope!r}')


def add_prediction_dump(cfg: Config, out_file: str):
    """Dump the raw test predictions to a pickle file as well."""
    if not out_file.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out must be a .pkl file, got {out_file!r}')
    dump = dict(type='DumpResults', out_file_path=out_file)
    if cfg.get('default_scope') == 'mmdet':
        # mmdet encodes masks as RLE before dumping
        dump['type'] = 'DumpDetResults'
    evaluator = cfg.test_evaluator
    if isinstance(evaluator, dict) and 'metrics' not in evaluator:
        evaluator = [evaluator]
    elif isinstance(evaluator, dict):
        evaluator = list(evaluator['metrics'])
    cfg.test_evaluator = list(evaluator) + [dump]
