"""Time the spectral layers on the feature maps dense heads produce.

    python tools/analysis_tools/benchmark_layers.py [--sizes 200x336x64 ...]
        [--fractions 1 0.5 0.25] [--repeat 10] [--threads N] [--device cpu]
        [--backward] [--out table.md]

Prints a markdown table: the global filter (the spectral core of GFNet,
SpectFormer and HorNet) and the AFNO mixer at each kept-mode fraction, with
the AFNO speed-up over keeping every mode.
"""
import argparse
import sys

import torch

from mmspectral.models.layers import AFNO2d, GlobalFilter
from mmspectral.utils import format_table, median_time

# (H, W, C) of Mask R-CNN (800x1344 input) and SegFormer (1024x1024) maps
DEFAULT_SIZES = ('200x336x64', '100x168x128', '50x84x256', '25x42x512',
                 '256x256x64', '128x128x128', '64x64x320', '32x32x512')


def parse_size(text: str):
    try:
        height, width, channels = (int(v) for v in text.split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'size {text!r} is not HxWxC, e.g. 200x336x64')
    return height, width, channels


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--sizes', nargs='+', type=parse_size,
        default=[parse_size(s) for s in DEFAULT_SIZES],
        help='feature maps HxWxC')
    parser.add_argument(
        '--fractions', nargs='+', type=float, default=[1.0, 0.5, 0.25],
        help='AFNO hard_thresholding_fraction values')
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--repeat', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, help='torch CPU threads')
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--backward', action='store_true', help='time forward + backward')
    parser.add_argument('--out', help='also write the table to this file')
    return parser.parse_args(argv)


def time_layer(layer, x, args) -> float:
    def run():
        out = layer(x)
        if args.backward:
            out.sum().backward()

    grad = torch.enable_grad() if args.backward else torch.no_grad()
    with grad:
        return median_time(run, args.warmup, args.repeat, args.device)


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    header = ['map (HxWxC)', 'global filter ms'] + [
        f'AFNO f={f:g} ms' for f in args.fractions
    ] + [f'AFNO speed-up f={f:g}' for f in args.fractions[1:]]
    rows = []
    for height, width, channels in args.sizes:
        x = torch.randn(args.batch, height, width, channels,
                        device=args.device, requires_grad=args.backward)
        layer = GlobalFilter(channels, (height, width)).to(args.device)
        row = [f'{height}x{width}x{channels}',
               f'{1e3 * time_layer(layer, x, args):.2f}']
        afno = []
        for fraction in args.fractions:
            blocks = next(b for b in (8, 4, 2, 1) if channels % b == 0)
            layer = AFNO2d(channels, blocks,
                           hard_thresholding_fraction=fraction)
            afno.append(time_layer(layer.to(args.device), x, args))
        row += [f'{1e3 * t:.2f}' for t in afno]
        row += [f'{afno[0] / t:.2f}x' for t in afno[1:]]
        rows.append(row)
    mode = 'forward + backward' if args.backward else 'forward'
    threads = torch.get_num_threads()
    table = format_table(header, rows)
    text = (f'{mode}, batch {args.batch}, device {args.device}, '
            f'{threads} CPU threads, median of {args.repeat}\n\n{table}\n')
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
