"""Train a model from an mmdet, mmseg or mmpretrain config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--cfg-options KEY=VALUE ...] [--launcher none|pytorch|slurm]

The config's ``default_scope`` decides which library's registries build it.
Several processes: ``tools/dist_train.sh CONFIG N`` (GPUs, or CPU with gloo).
"""
import argparse
import sys

from mmspectral.converters import CheckpointError
from mmspectral.engine import (ConfigError, add_exact_resume,
                               add_run_arguments, bound_cufft_plan_cache,
                               build_model, build_runner,
                               check_checkpoint_matches, check_config,
                               enable_amp, fit_amp_to_device, load_config,
                               setup_cpu_distributed)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_run_arguments(parser)
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        help='resume from CKPT, or without a value from the latest '
        'checkpoint in the work dir')
    parser.add_argument(
        '--amp', action='store_true', help='automatic mixed precision')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, args.cfg_options, args.work_dir,
                          args.launcher)
        if args.amp:
            enable_amp(cfg)
        fit_amp_to_device(cfg)
        add_exact_resume(cfg)
        bound_cufft_plan_cache(cfg)
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
