"""Evaluate a checkpoint with an mmdet, mmseg or mmpretrain config.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out PKL]
        [--show-dir DIR] [--dump-metrics JSON] [--cfg-options ...]
        [--launcher none|pytorch|slurm] [--debug]

Prints the config's metrics: COCO bbox/segm mAP for detection, mIoU / mAcc /
aAcc with a per-class table for segmentation, top-1/top-5 for classification.
The outputs (``--out``, ``--dump-metrics``, ``--show-dir``) must not exist
yet (an empty ``--show-dir`` may), their folders must, and no two may be
the same file. Predictions that are NaN or infinite stop the run with an
error naming the checkpoint.
"""
import argparse
import json
import os
import os.path as osp

from mmspectral.checkpoint import is_remote
from .checkpoints import check_checkpoint_matches
from .checks import check_config
from .distributed import check_launcher, launch_rank, setup_cpu_distributed
from .run_setup import (add_prediction_dump, add_run_arguments,
                        add_run_hooks, check_distinct_outputs,
                        check_output_path, enable_visualization, load_config,
                        reported_errors)
from .runner import build_run_model, build_runner

__all__ = ['parse_args', 'main', 'write_metrics']


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


def write_metrics(metrics: dict, path: str):
    """Write ``metrics`` as JSON, whole or not at all."""
    tmp = f'{path}.tmp'
    with open(tmp, 'w') as f:
        json.dump({k: float(v) for k, v in metrics.items()}, f, indent=2)
    os.replace(tmp, path)


def check_outputs(args):
    """The outputs must not destroy anything (see :func:`check_output_path`)
    nor be one file twice."""
    check_distinct_outputs(out=args.out, dump_metrics=args.dump_metrics,
                           show_dir=args.show_dir)
    for option, path in (('--out', args.out),
                         ('--dump-metrics', args.dump_metrics)):
        if path:
            check_output_path(path, option)
    if args.show_dir:
        check_output_path(args.show_dir, '--show-dir', folder=True)


def main(argv=None):
    args = parse_args(argv)
    with reported_errors(args.debug):
        check_launcher(args.launcher)
        cfg = load_config(args.config, args.cfg_options, args.work_dir,
                          args.launcher)
        if not is_remote(args.checkpoint) and not osp.isfile(
                args.checkpoint):
            raise FileNotFoundError(
                f'checkpoint {args.checkpoint!r} not found')
        check_outputs(args)
        cfg.load_from = args.checkpoint
        add_run_hooks(cfg, train=False)
        check_config(cfg, ['test'])
        if args.show_dir:
            enable_visualization(cfg, args.show_dir)
        if args.out:
            add_prediction_dump(cfg, args.out)
        model, rng = build_run_model(cfg, launch_rank(args.launcher))
        read = {args.checkpoint: check_checkpoint_matches(
            model, args.checkpoint, what=f'the model of {args.config}')}
        setup_cpu_distributed(cfg, args.launcher)
        runner = build_runner(cfg, model, rng, read)
        del model, read
        metrics = runner.test()
        if args.dump_metrics and runner.rank == 0:
            write_metrics(metrics, args.dump_metrics)
