"""FLOPs and parameters of a config's model, FFT included.

    python tools/analysis_tools/get_flops.py CONFIG [--shape H [W]]
        [--backbone-only] [--by-module DEPTH]

Counts one multiply-add as one FLOP (as mmengine, mmdet and mmseg do) and adds
the operators their counters skip: each rfft2/irfft2 over an H x W map with C
channels costs ``H*W * C * ceil(log2(H*W))`` (the GFNet authors' formula),
each complex filter product one FLOP per frequency, complex einsums (AFNO)
four per complex multiply-add and fused attention its two matrix products.
Detectors are counted in ``mode='tensor'`` with their test-time proposals.
"""
import argparse

from mmengine.analysis.print_helper import complexity_stats_table

from mmspectral.utils.flops import _TensorMode, flop_analyzer, model_flops
from .run_setup import load_config
from .runner import build_model


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--shape', type=int, nargs='+', default=[224],
        help='input height and width (one value: square). Defaults to 224')
    parser.add_argument(
        '--backbone-only', action='store_true',
        help="count only the model's backbone")
    parser.add_argument(
        '--by-module', type=int, metavar='DEPTH',
        help='also print a per-module table down to this depth')
    return parser.parse_args(argv)


def input_size(shape):
    if len(shape) not in (1, 2) or min(shape) < 1:
        raise SystemExit(f'--shape takes H or H W, got {shape}')
    return (shape[0], shape[0]) if len(shape) == 1 else tuple(shape)


def detection_samples(height: int, width: int):
    """Data samples a two-stage detector needs to run in tensor mode."""
    from mmdet.structures import DetDataSample
    meta = dict(img_shape=(height, width), ori_shape=(height, width),
                pad_shape=(height, width), batch_input_shape=(height, width),
                scale_factor=(1.0, 1.0))
    return [DetDataSample(metainfo=meta)]


def build_counted_model(cfg, height, width, backbone_only):
    model = build_model(cfg)
    if backbone_only:
        return model.backbone, None
    scope = cfg.get('default_scope')
    samples = detection_samples(height, width) if scope == 'mmdet' else None
    return model, samples


def main(argv=None):
    args = parse_args(argv)
    height, width = input_size(args.shape)
    cfg = load_config(args.config)
    model, samples = build_counted_model(cfg, height, width,
                                         args.backbone_only)
    counts = model_flops(model, height, width, samples)
    what = 'backbone' if args.backbone_only else type(model).__name__
    print(f'{args.config}\n{what} at {height}x{width}: '
          f'{counts["flops"] / 1e9:.3f} GFLOPs, '
          f'{counts["params"] / 1e6:.2f} M parameters')
    if args.by_module is not None:
        import torch
        traced = model if args.backbone_only else _TensorMode(model, samples)
        analyzer = flop_analyzer(traced.eval(),
                                 (torch.randn(1, 3, height, width), ))
        print(complexity_stats_table(analyzer, max_depth=args.by_module))
    return 0
