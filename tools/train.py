"""Train a model from an mmdet, mmseg or mmpretrain config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--cfg-options KEY=VALUE ...] [--launcher none|pytorch|slurm]
        [--debug]

The config's ``default_scope`` decides which library's registries build it.
Several processes: ``tools/dist_train.sh CONFIG N`` (GPUs, or CPU with gloo).
A work dir that holds checkpoints is only trained in again by ``--resume``;
see ``mmspectral/engine/workdir.py`` for what the run keeps safe.
"""
import argparse
import contextlib

from mmspectral.engine import (WorkDirLock, add_run_arguments, add_run_hooks,
                               build_model, build_runner,
                               check_checkpoint_matches, check_config,
                               check_pretrained, claim_work_dir, enable_amp,
                               fit_amp_to_device, is_main_process, load_config,
                               reported_errors, setup_cpu_distributed,
                               write_checkpoints_atomically)


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


def main(argv=None):
    args = parse_args(argv)
    with reported_errors(args.debug):
        cfg = load_config(args.config, args.cfg_options, args.work_dir,
                          args.launcher)
        if args.amp:
            enable_amp(cfg)
        fit_amp_to_device(cfg)
        add_run_hooks(cfg, train=True)
        write_checkpoints_atomically(cfg)
        check_config(cfg, ['train', 'val'] if cfg.get('val_cfg') else
                     ['train'])
        model = build_model(cfg)
        check_pretrained(model)
        if cfg.get('load_from') and not args.resume:
            check_checkpoint_matches(
                model, cfg.load_from, allow_missing=True,
                what=f'the model of {args.config}')
        lock = WorkDirLock(cfg.work_dir) if is_main_process() else \
            contextlib.nullcontext()
        with lock:
            start = claim_work_dir(cfg.work_dir, args.resume)
            if args.resume:
                cfg.resume = True
                cfg.load_from = start  # None: nothing to resume, start anew
                if start:
                    check_checkpoint_matches(
                        model, start, what=f'the model of {args.config}',
                        resume_cfg=cfg)
            del model
            setup_cpu_distributed(cfg, args.launcher)
            build_runner(cfg).train()


if __name__ == '__main__':
    main()
