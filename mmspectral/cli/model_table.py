"""Parameters and FLOPs of every arch at 224x224 beside the published ones.

    python tools/analysis_tools/model_table.py [--only gfnet-ti hornet-t ...]
        [--out table.md]

Builds each ImageNet classifier from ``configs/*/*_in1k.py`` (and the peers
Swin-T and ConvNeXt-T from mmpretrain, a check of the counter itself), counts
with ``get_flops.py``'s rules and prints a markdown table with the published
numbers (the papers; mmpretrain for HorNet) and the relative differences. A
published number given to fewer digits (GFNet's "7M", "1.3G") counts as
matched when ours rounds to it.
"""
import argparse
import glob
import os.path as osp
import sys
from decimal import Decimal

from mmspectral.utils import format_table, print_report
from mmspectral.utils.config_path import config_root
from mmspectral.utils.flops import model_flops
from .run_setup import load_config
from .runner import build_model

# name: (params in M, GFLOPs at 224), as published (strings keep precision)
PUBLISHED = {
    'gfnet-ti': ('7', '1.3'), 'gfnet-xs': ('16', '2.8'),
    'gfnet-s': ('25', '4.5'), 'gfnet-b': ('43', '7.9'),
    'gfnet-h-ti': ('15', '2.0'), 'gfnet-h-s': ('32', '4.5'),
    'gfnet-h-b': ('54', '8.4'),
    # mmpretrain's converted checkpoints give HorNet T/S/B to two decimals;
    # L was trained on ImageNet-22K (its published size includes that head)
    'hornet-t': ('22.41', '3.98'), 'hornet-t-gf': ('22.99', '3.90'),
    'hornet-s': ('49.53', '8.83'), 'hornet-s-gf': ('50.40', '8.71'),
    'hornet-b': ('87.26', '15.58'), 'hornet-b-gf': ('88.42', '15.42'),
    'hornet-l': (None, '34.8'), 'hornet-l-gf': (None, '34.7'),
    'spectformer-t': ('9.16', '1.8'), 'spectformer-xs': ('20.03', '4.0'),
    'spectformer-s': ('32.45', '6.6'), 'spectformer-b': ('57.16', '11.5'),
    'spectformer-h-s': ('22.2', '3.9'), 'spectformer-h-b': ('33.1', '6.3'),
    'spectformer-h-l': ('54.7', '12.7'),
    # the AFNO paper publishes no ImageNet model sizes
    'afno-ti': (None, None), 'afno-s': (None, None), 'afno-b': (None, None),
    'swin-t (peer)': ('28.3', '4.36'), 'convnext-t (peer)': ('28.6', '4.46'),
}  # yapf: disable

# backbone and neck of mmpretrain's ImageNet configs of the peers
PEERS = {
    'swin-t (peer)': (dict(type='SwinTransformer', arch='tiny', img_size=224),
                      dict(type='GlobalAveragePooling')),
    'convnext-t (peer)': (dict(type='ConvNeXt', arch='tiny'), None),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--only', nargs='+', metavar='NAME',
        help=f'rows to compute, from: {" ".join(PUBLISHED)}')
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--out', help='also write the table to this file')
    return parser.parse_args(argv)


def classifier_configs():
    paths = sorted(glob.glob(osp.join(config_root(), '*', '*_in1k.py')))
    return {osp.basename(p).split('_')[0]: p for p in paths}


def build_peer(name):
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    backbone, neck = PEERS[name]
    model = dict(
        type='ImageClassifier',
        backbone=backbone,
        neck=neck,
        head=dict(type='LinearClsHead', num_classes=1000, in_channels=768))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(model)


def build_classifier(name, configs):
    if name in PEERS:
        return build_peer(name)
    return build_model(load_config(configs[name]))


def compare(ours: float, published) -> str:
    """Relative difference, or 'match' when ``ours`` rounds to a published
    number given to fewer digits."""
    if published is None:
        return '–'
    value = Decimal(published)
    rounded = Decimal(repr(ours)).quantize(value)
    diff = (ours - float(value)) / float(value)
    if rounded == value:
        return f'{diff:+.1%} (match)'
    return f'{diff:+.1%}'


def table_rows(names, configs, size):
    rows = []
    for name in names:
        counts = model_flops(build_classifier(name, configs), size, size)
        params, flops = counts['params'] / 1e6, counts['flops'] / 1e9
        pub_params, pub_flops = PUBLISHED[name] if size == 224 else (None,
                                                                     None)
        rows.append([
            name, f'{params:.2f}', pub_params or '–',
            compare(params, pub_params), f'{flops:.2f}', pub_flops or '–',
            compare(flops, pub_flops)
        ])
        print(' | '.join(rows[-1]), file=sys.stderr, flush=True)
    return rows


def main(argv=None):
    args = parse_args(argv)
    configs = classifier_configs()
    known = list(configs) + list(PEERS)
    names = args.only or known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f'unknown model(s) {unknown}; choose from {known}')
    header = [
        'model', 'params (M)', 'published', 'diff', f'GFLOPs @{args.size}',
        'published', 'diff'
    ]
    table = format_table(header, table_rows(names, configs, args.size))
    text = (f'ImageNet classifiers at {args.size}x{args.size}, FLOPs = '
            'multiply-adds with FFTs counted (get_flops.py)\n\n'
            f'{table}\n')
    print_report(text, args.out)
    return 0
