"""What ``valid_region`` costs: each backbone on a batch of two images of
different sizes, padded as mmdet pads them, with zero padding (the default)
and with ``valid_region=True`` and the padding marked.

    python tools/analysis_tools/benchmark_padding.py [--models gfnet-h-ti ...]
        [--sizes 320x480 416x400] [--mode test|train] [--repeat 5]
        [--warmup 1] [--out FILE]

The two variants share their weights and take turns in every round of the
timing (median of ``--repeat``): ``--mode test`` times the eval forward
under ``no_grad``, ``--mode train`` a train-mode forward and backward (the
backbone's part of a training step). The last
column checks what the option buys: the relative difference of the first
image's outputs over its region, in the batch against alone.
"""
import argparse
import sys

import torch
import torch.nn.functional as F

from mmspectral.models.backbones.base import PAD_MARK
from mmspectral.utils import (add_timing_options, describe_machine,
                              format_table, median_times, parse_timing_args,
                              print_report)

MODELS = {
    'gfnet-h-ti': dict(type='GFNetH', arch='h-ti'),
    'hornet-t-gf': dict(type='HorNet', arch='t-gf', out_indices=(0, 1, 2, 3),
                        gap_before_final_norm=False),
    'afno-ti': dict(type='AFNO', arch='ti'),
    'spectformer-h-s': dict(type='SpectFormerH', arch='h-s'),
    'afno-mit-b0': dict(type='AFNOMiT', arch='b0'),
}


def parse_size(text: str):
    height, _, width = text.partition('x')
    return int(height), int(width or height)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+', default=list(MODELS),
                        choices=list(MODELS))
    parser.add_argument('--sizes', nargs=2, type=parse_size,
                        default=[(320, 480), (416, 400)],
                        help='the two image sizes, HxW')
    parser.add_argument('--mode', choices=['test', 'train'], default='test',
                        help='time the eval forward or forward + backward')
    add_timing_options(parser, repeat=5, warmup=1, device=None)
    parser.add_argument('--out', help='also write the report to this file')
    return parse_timing_args(parser, argv)


def padded_batch(images, value: float) -> torch.Tensor:
    """The images padded at the bottom/right to the largest, with ``value``,
    as mmdet's data preprocessor pads a batch."""
    height = max(i.shape[-2] for i in images)
    width = max(i.shape[-1] for i in images)
    return torch.stack([
        F.pad(i, (0, width - i.shape[-1], 0, height - i.shape[-2]),
              value=value) for i in images
    ])


def build(name: str, valid_region: bool):
    import mmspectral  # noqa: F401
    from mmspectral.registry import MODELS as REGISTRY
    torch.manual_seed(0)  # the same weights for both variants
    return REGISTRY.build(dict(MODELS[name],
                               valid_region=valid_region)).eval()


def region_difference(model, image, batch) -> float:
    """Largest relative difference over the first image's region of its
    outputs in ``batch`` against alone."""
    with torch.no_grad():
        alone, batched = model(image[None]), model(batch)
    worst = 0.
    for a, b in zip(alone, batched):
        b = b[:1, ..., :a.shape[-2], :a.shape[-1]]
        worst = max(worst, ((a - b).norm() / a.norm()).item())
    return worst


def train_step(model, batch):
    """Forward and backward through ``model`` (gradients of the outputs'
    means, as a loss would give them)."""
    model.zero_grad(set_to_none=True)
    sum(out.float().mean() for out in model(batch)).backward()


def model_row(name: str, args) -> list:
    images = [torch.randn(3, *size) for size in args.sizes]
    padded, valid = build(name, False), build(name, True)
    zeros, marked = padded_batch(images, 0.), padded_batch(images, PAD_MARK)
    if args.mode == 'train':
        padded.train(), valid.train()
        t_padded, t_valid = median_times(
            [lambda: train_step(padded, zeros),
             lambda: train_step(valid, marked)], args.warmup, args.repeat)
        padded.eval(), valid.eval()
    else:
        with torch.no_grad():
            t_padded, t_valid = median_times(
                [lambda: padded(zeros), lambda: valid(marked)], args.warmup,
                args.repeat)
    return [
        name, f'{1e3 * t_padded:.0f}', f'{1e3 * t_valid:.0f}',
        f'{t_valid / t_padded:.2f}',
        f'{region_difference(padded, images[0], zeros):.1e}',
        f'{region_difference(valid, images[0], marked):.1e}'
    ]


def main(argv=None):
    args = parse_args(argv)
    (h1, w1), (h2, w2) = args.sizes
    rows = [model_row(name, args) for name in args.models]
    timed = ('eval forward' if args.mode == 'test' else
             'train-mode forward + backward')
    text = (f'{describe_machine()}\nBackbone {timed}, a batch of '
            f'{h1}x{w1} and {h2}x{w2}, median of {args.repeat}\n\n' +
            format_table([
                'backbone', 'zero padding ms', 'valid_region ms', 'ratio',
                'in batch vs alone, padded', 'in batch vs alone, '
                'valid_region'
            ], rows) + '\n')
    print_report(text, args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
