"""Train a model from an mmdet, mmseg or mmpretrain config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--cfg-options KEY=VALUE ...] [--launcher none|pytorch|slurm]
        [--debug]

The config's ``default_scope`` decides which library's registries build it.
Several processes: ``tools/dist_train.sh CONFIG N`` (GPUs, or CPU with gloo).
A work dir that holds checkpoints is only trained in again by ``--resume``;
see :mod:`mmspectral.cli.workdir` for what the run keeps safe.
"""
import argparse
import contextlib

from .checkpoints import (check_checkpoint_matches, check_pretrained,
                          check_resume_argument, check_resume_checkpoint)
from .checks import check_config
from .distributed import (check_launcher, is_main_process, launch_rank,
                          setup_cpu_distributed)
from .run_setup import (add_run_arguments, add_run_hooks, enable_amp,
                        fit_amp_to_device, load_config, reported_errors)
from .runner import build_run_model, build_runner
from .workdir import (WorkDirLock, checkpoint_dir, claim_work_dir,
                      remove_stale_temporaries, write_checkpoints_atomically)

__all__ = ['parse_args', 'main']


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_run_arguments(parser)
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        help='resume from CKPT, or without a value from the latest '
        'readable checkpoint in the work dir')
    parser.add_argument(
        '--amp', action='store_true', help='automatic mixed precision')
    return parser.parse_args(argv)


@contextlib.contextmanager
def _claimed(cfg, resume, main: bool, cache: dict):
    """Hold the locks of the work dir and the checkpoint folder (main
    process only) and yield the checkpoint to resume from (see
    :func:`claim_work_dir`)."""
    folder = checkpoint_dir(cfg)
    with contextlib.ExitStack() as stack:
        if main:
            for path in dict.fromkeys(p for p in (cfg.work_dir, folder) if p):
                stack.enter_context(WorkDirLock(path))
            if folder:
                remove_stale_temporaries(folder)
        yield claim_work_dir(cfg.work_dir, resume, folder, cache)


def main(argv=None):
    args = parse_args(argv)
    with reported_errors(args.debug):
        check_launcher(args.launcher)
        check_resume_argument(args.resume)
        cfg = load_config(args.config, args.cfg_options, args.work_dir,
                          args.launcher)
        if args.amp:
            enable_amp(cfg)
        fit_amp_to_device(cfg)
        add_run_hooks(cfg, train=True)
        write_checkpoints_atomically(cfg)
        check_config(cfg, ['train', 'val'] if cfg.get('val_cfg') else
                     ['train'])
        what = f'the model of {args.config}'
        model, rng = build_run_model(cfg, launch_rank(args.launcher))
        check_pretrained(model)
        read = {}
        if cfg.get('load_from') and not args.resume:
            read[cfg.load_from] = check_checkpoint_matches(
                model, cfg.load_from, allow_missing=True, what=what)
        with _claimed(cfg, args.resume, is_main_process(args.launcher),
                      read) as start:
            if args.resume:
                cfg.resume = True
                cfg.load_from = start  # None: nothing to resume, start anew
                if start:
                    read = {start: check_resume_checkpoint(
                        model, start, cfg, what, read.get(start))}
            setup_cpu_distributed(cfg, args.launcher)
            runner = build_runner(cfg, model, rng, read)
            del model, read
            runner.train()
