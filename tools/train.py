"""Train a model from an mmdet, mmseg or mmpretrain config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--cfg-options KEY=VALUE ...] [--launcher none|pytorch|slurm]

The config's ``default_scope`` decides which library's registries build it.
Several processes: ``tools/dist_train.sh CONFIG N`` (GPUs, or CPU with gloo).
"""
import argparse
import os
import sys

from mmspectral.converters import CheckpointError
from mmspectral.engine import (ConfigError, DictAction, add_exact_resume,
                               build_model, build_runner,
                               check_checkpoint_matches, check_config,
                               enable_amp, fit_amp_to_device, load_config,
                               setup_cpu_distributed)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        help='resume from CKPT, or without a value from the latest '
        'checkpoint in the work dir')
    parser.add_argument(
        '--amp', action='store_true', help='automatic mixed precision')
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
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, args.cfg_options, args.work_dir,
                          args.launcher)
        if args.amp:
            enable_amp(cfg)
        fit_amp_to_device(cfg)
        add_exact_resume(cfg)
        if args.resume:
            cfg.resume = True
            cfg.load_from = None if args.resume == 'auto' else args.resume
        check_config(cfg, ['train', 'val'] if cfg.get('val_cfg') else
                     ['train'])
        if cfg.get('load_from'):
            check_checkpoint_matches(
                build_model(cfg),
                cfg.load_from,
                allow_missing=not cfg.get('resume'),
                what=f'the model of {args.config}')
        setup_cpu_distributed(cfg, args.launcher)
        runner = build_runner(cfg)
    except (ConfigError, CheckpointError, FileNotFoundError, ValueError) as e:
        sys.exit(f'error: {e}')
    try:
        runner.train()
    except (ConfigError, CheckpointError, FileNotFoundError) as e:
        sys.exit(f'error: {e}')


if __name__ == '__main__':
    main()
