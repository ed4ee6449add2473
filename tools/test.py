"""Evaluate a checkpoint with an mmdet, mmseg or mmpretrain config.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out PKL]
        [--show-dir DIR] [--dump-metrics JSON] [--cfg-options ...]
        [--launcher none|pytorch|slurm]

Prints the config's metrics: COCO bbox/segm mAP for detection, mIoU / mAcc /
aAcc with a per-class table for segmentation, top-1/top-5 for classification.
"""
import argparse
import json
import os.path as osp
import sys

from mmspectral.converters import CheckpointError
from mmspectral.engine import (ConfigError, add_prediction_dump,
                               add_run_arguments, bound_cufft_plan_cache,
                               build_model, build_runner,
                               check_checkpoint_matches, check_config,
                               enable_visualization, load_config,
                               setup_cpu_distributed)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_run_arguments(parser)
    parser.add_argument('checkpoint', help='checkpoint to evaluate')
    parser.add_argument('--out', help='also dump raw predictions (.pkl)')
    parser.add_argument(
        '--show-dir', help='draw the predictions into this folder')
    parser.add_argument(
        '--dump-metrics', help='write the final metrics to this JSON file')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, args.cfg_options, args.work_dir,
                          args.launcher)
        if not osp.isfile(args.checkpoint) and '://' not in args.checkpoint:
            raise FileNotFoundError(
                f'checkpoint {args.checkpoint!r} not found')
        cfg.load_from = args.checkpoint
        check_config(cfg, ['test'])
        bound_cufft_plan_cache(cfg)
        if args.show_dir:
            enable_visualization(cfg, args.show_dir)
        if args.out:
            add_prediction_dump(cfg, args.out)
        check_checkpoint_matches(
            build_model(cfg),
            args.checkpoint,
            what=f'the model of {args.config}')
        setup_cpu_distributed(cfg, args.launcher)
        runner = build_runner(cfg)
    except (ConfigError, CheckpointError, FileNotFoundError, ValueError) as e:
        sys.exit(f'error: {e}')
    try:
        metrics = runner.test()
    except (ConfigError, CheckpointError, FileNotFoundError) as e:
        sys.exit(f'error: {e}')
    if args.dump_metrics and runner.rank == 0:
        with open(args.dump_metrics, 'w') as f:
            json.dump({k: float(v) for k, v in metrics.items()}, f, indent=2)


if __name__ == '__main__':
    main()
