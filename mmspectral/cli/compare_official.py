"""GFNet-H against the official implementation: same weights, same input,
outputs compared and both timed taking turns, at each input size.

    python tools/analysis_tools/compare_official.py --official-repo GFNet/
        [--arch h-s] [--sizes 512 1024] [--amp] [--repeat 3] [--warmup 1]
        [--threads N] [--out FILE]

``--official-repo`` is a checkout of https://github.com/raoyongming/GFNet
(its ``gfnet.py`` is imported from there, nothing of it is copied here; it
needs ``timm``). For each size the official ``GFNetPyramid`` is built for
that image size (its filters have the size of the feature maps, as the
official code requires), given random weights, converted with this
package's converter and loaded into ``GFNetH``; both run the eval forward
of the backbone on one random image (official: ``forward_features``, ours:
the last stage, pooled the same way). ``--amp`` autocasts both to bfloat16
(CPU) or float16 (CUDA). Prints the median times, the speed-up and the
largest difference of the outputs.
"""
import argparse
import importlib.util
import os.path as osp
import sys
import types
from functools import partial

import torch

from mmspectral.utils import (add_timing_options, format_table, median_times,
                              parse_timing_args, print_report)

HIERARCHICAL_ARCHS = ('h-ti', 'h-s', 'h-b')


def official_arguments(arch: str) -> dict:
    """``GFNetPyramid`` arguments of ``arch`` (the official main_gfnet.py's
    values, which our arch zoo holds)."""
    from mmspectral.models import GFNetH
    settings = GFNetH.arch_zoo[arch]
    return dict(embed_dim=list(settings['embed_dims']),
                depth=list(settings['depths']),
                mlp_ratio=[settings['mlp_ratio']] * 4,
                init_values=settings['layer_scale_init_value'])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--official-repo', required=True,
                        help='checkout of github.com/raoyongming/GFNet')
    parser.add_argument('--arch', default='h-s', choices=HIERARCHICAL_ARCHS)
    parser.add_argument('--sizes', nargs='+', type=int, default=[512, 1024])
    parser.add_argument('--amp', action='store_true')
    add_timing_options(parser, repeat=3, warmup=1)
    parser.add_argument('--out', help='also write the table here')
    return parse_timing_args(parser, argv)


def import_official(repo: str) -> types.ModuleType:
    """The official ``gfnet.py`` of ``repo`` as a module."""
    path = osp.join(repo, 'gfnet.py')
    if not osp.isfile(path):
        raise SystemExit(f'error: {path} does not exist; --official-repo '
                         'must be a checkout of '
                         'https://github.com/raoyongming/GFNet')
    try:
        import numpy.lib.arraypad  # noqa: F401
    except ImportError:
        # gfnet.py imports (and never uses) numpy.lib.arraypad.pad, a module
        # numpy 2 made private
        import numpy
        sys.modules['numpy.lib.arraypad'] = types.SimpleNamespace(
            pad=numpy.pad)
    spec = importlib.util.spec_from_file_location('official_gfnet', path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as err:
        raise SystemExit(f'error: importing {path} failed ({err}); the '
                         'official code needs timm: pip install timm')
    return module


def paired_models(official_module, arch: str, size: int, device: str):
    """The official model built for ``size`` with random weights, and ours
    holding the same weights through the converter."""
    from mmspectral.converters import backbone_part, convert_gfnet
    from mmspectral.models import GFNetH
    official = official_module.GFNetPyramid(
        img_size=size, patch_size=4,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), drop_path_rate=0.,
        **official_arguments(arch))
    with torch.no_grad():  # a layer scale of 1e-5 would hide differences
        for param in official.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    state, meta = convert_gfnet(official.state_dict(), arch)
    ours = GFNetH(arch, pretrain_img_size=meta['pretrain_img_size'],
                  out_indices=(3, ))
    ours.load_state_dict(backbone_part(state))
    return official.to(device).eval(), ours.to(device).eval()


def compare(official, ours, size: int, args):
    """(official seconds, our seconds, max |difference| of the features)."""
    x = torch.randn(1, 3, size, size, device=args.device)
    autocast = torch.autocast(
        torch.device(args.device).type, enabled=args.amp,
        dtype=torch.float16 if args.device.startswith('cuda') else
        torch.bfloat16)

    def run_official():
        with autocast:
            return official.forward_features(x)

    def run_ours():
        with autocast:
            return ours(x)[0].mean((2, 3))

    with torch.no_grad():
        diff = (run_official().float() - run_ours().float()).abs().max()
        seconds = median_times([run_official, run_ours], args.warmup,
                               args.repeat, args.device)
    return seconds[0], seconds[1], diff.item()


def report(rows, args) -> str:
    precision = 'autocast ' + ('float16' if args.device.startswith('cuda')
                               else 'bfloat16') if args.amp else 'float32'
    where = args.device if args.device != 'cpu' else \
        f'CPU, {torch.get_num_threads()} threads'
    header = ['input', 'official (ms)', 'mmspectral (ms)', 'speed-up',
              'max |diff|']
    cells = [[f'{size}x{size}', f'{1e3 * t_official:.1f}',
              f'{1e3 * t_ours:.1f}', f'{t_official / t_ours:.2f}x',
              f'{diff:.1e}'] for size, t_official, t_ours, diff in rows]
    return (f'GFNet-{args.arch.upper()} eval forward, batch 1, {where}, '
            f'{precision}; median of {args.repeat} after {args.warmup} '
            f'warm-up, taking turns; torch {torch.__version__}\n\n' +
            format_table(header, cells) + '\n')


def main(argv=None):
    args = parse_args(argv)
    official_module = import_official(args.official_repo)
    rows = []
    for size in args.sizes:
        official, ours = paired_models(official_module, args.arch, size,
                                       args.device)
        rows.append((size, ) + compare(official, ours, size, args))
        print(f'{size}x{size}: official {1e3 * rows[-1][1]:.1f} ms, ours '
              f'{1e3 * rows[-1][2]:.1f} ms', file=sys.stderr, flush=True)
        del official, ours
    print_report(report(rows, args), args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
