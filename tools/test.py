"""Evaluate a checkpoint with an mmdet, mmseg or mmpretrain config.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out PKL]
        [--show-dir DIR] [--dump-metrics JSON] [--cfg-options ...]
        [--launcher none|pytorch|slurm] [--debug]

Prints the config's metrics: COCO bbox/segm mAP for detection, mIoU / mAcc /
aAcc with a per-class table for segmentation, top-1/top-5 for classification.
The outputs (``--out``, ``--dump-metrics``, ``--show-dir``) must not exist
yet (an empty ``--show-dir`` may), and their folders must.
"""
import argparse
import json
import os
import os.path as osp

from mmspectral.checkpoint import is_remote
from mmspectral.engine import (add_prediction_dump, add_run_arguments,
                               add_run_hooks, build_model, build_runner,
                               check_checkpoint_matches, check_config,
                               check_output_path, enable_visualization,
                               load_config, reported_errors,
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


def write_metrics(metrics: dict, path: str):
    tmp = f'{path}.tmp'
    with open(tmp, 'w') as f:
        json.dump({k: float(v) for k, v in metrics.items()}, f, indent=2)
    os.replace(tmp, path)


def main(argv=None):
    args = parse_args(argv)
    with reported_errors(args.debug):
        cfg = load_config(args.config, args.cfg_options, args.work_dir,
                          args.launcher)
        if not is_remote(args.checkpoint) and not osp.isfile(
                args.checkpoint):
            raise FileNotFoundError(
                f'checkpoint {args.checkpoint!r} not found')
        for option, path in (('--out', args.out),
                             ('--dump-metrics', args.dump_metrics)):
            if path:
                check_output_path(path, option)
        if args.show_dir:
            check_output_path(args.show_dir, '--show-dir', folder=True)
        cfg.load_from = args.checkpoint
        add_run_hooks(cfg, train=False)
        check_config(cfg, ['test'])
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
        metrics = runner.test()
        if args.dump_metrics and runner.rank == 0:
            write_metrics(metrics, args.dump_metrics)


if __name__ == '__main__':
    main()
