"""Time the spectral layers on the feature maps dense heads produce.

    python tools/analysis_tools/benchmark_layers.py [--sizes 200x336x64 ...]
        [--fractions 1 0.5 0.25] [--repeat 10] [--threads N] [--device cpu]
        [--backward] [--out table.md]
        [--backbone gfnet-h-s --image 1024 800x1344 ... [--profile]]

Prints a markdown table per feature map: our global filter (the spectral core
of GFNet, SpectFormer and HorNet) against the naive formulation, and the AFNO
mixer at each kept-mode fraction with its speed-up over keeping every mode.

The engine table (``--engines``, on by default) times the global filter on
each map with every implementation of the spectral engine taking turns
(``fft``, ``dft``, ``factored``, and what ``auto`` picks), in float32 and
under bfloat16 autocast (float16 on a GPU), with each one's relative error
against the float32 ``fft`` result. Every report starts with the CPU model,
its bf16/fp16 matrix flags and the torch version.

The naive global filter is the official GFNet layer made size-agnostic the way
the official HorNet dense code does it: channels-last ``rfft2`` over dims
(1, 2) after an unconditional float cast, the filter re-interpolated on every
call (``'bilinear'``: ``F.interpolate`` as the official code; ``'frequency'``:
the library's ``resize_filter``, uncached), an out-of-place complex product.
With ``--backbone`` the same
comparison is made on a whole backbone: every GlobalFilter swapped for the
naive layer with the same weights, outputs checked equal. The backbone is
also timed with every filter removed: no filter implementation can make it
faster than that, so ``naive / no filter`` bounds the attainable speed-up.
``--profile`` adds, per size, the operators taking most time in one forward
of our backbone (torch's profiler), e.g. the FFTs and the copies around them.

``--distinct-sizes N`` (with ``--backbone``) shows the memory that the
eval-mode cache of resized filters takes: the backbone runs on N distinct
COCO-like sizes (``--short`` x ``short + 32 k``, landscape and portrait in
turn) with each ``resize_cache_size`` of ``--cache-sizes`` (``-1``: no
bound), each in a fresh process, and the process RSS (after ``malloc_trim``)
and the bytes the caches hold are printed after each size; then the forward
time at a repeated size with and without the cache.

    python tools/analysis_tools/benchmark_layers.py --sizes --backbone \
        gfnet-h-s --distinct-sizes 8
"""
import argparse
import copy
import multiprocessing
import sys
from typing import Dict

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmspectral.models.layers import AFNO2d, GlobalFilter, resize_filter
from mmspectral.models.layers.spectral import (COMPUTED_IMPLS, TIMINGS,
                                               SpectralTimings)
from mmspectral.utils import (add_timing_options, describe_machine,
                              format_table, median_times,
                              native_stderr_silenced, parse_timing_args,
                              print_report, relative_error)

# H x W x C : S -- maps of Mask R-CNN (800x1344 input) and SegFormer
# (1024x1024) with the filter stored for S x S, its ImageNet-224 size
DEFAULT_SIZES = ('200x336x64:56', '100x168x128:28', '50x84x256:14',
                 '25x42x512:7', '256x256x64:56', '128x128x128:28',
                 '64x64x320:14', '32x32x512:7')

FAMILIES = {'gfnet': 'GFNet', 'hornet': 'HorNet', 'spectformer': 'SpectFormer'}


def naive_resize(weight, src_size, dst_size, mode):
    """A ``(h, w, C, 2)`` filter on the half spectrum of ``src_size``
    resized to that of ``dst_size`` on every call: ``'bilinear'`` with
    ``F.interpolate`` as the official HorNet dense code does, ``'frequency'``
    with the library's :func:`resize_filter` (no official code resizes that
    way)."""
    (h0, w0), (h, w) = src_size, dst_size
    if (mode == 'bilinear' and (h, w // 2 + 1) == (h0, w0 // 2 + 1)) or (
            mode == 'frequency' and (h, w) == (h0, w0)):
        return weight
    if mode == 'frequency':
        return resize_filter(weight, src_size, dst_size, mode)
    planes = weight.permute(3, 2, 0, 1)  # (2, C, h0, w0 // 2 + 1)
    planes = F.interpolate(planes, size=(h, w // 2 + 1), mode='bilinear',
                           align_corners=True)
    return planes.permute(2, 3, 1, 0)


class NaiveGlobalFilter(nn.Module):
    """The baseline: :class:`GlobalFilter` computed the naive way."""

    def __init__(self, layer: GlobalFilter):
        super().__init__()
        self.complex_weight = layer.complex_weight
        self.spatial_size = layer.spatial_size
        self.resize_mode = layer.resize_mode
        self.channels_last = layer.channels_last

    def forward(self, x, valid_sizes=None):
        if valid_sizes is not None:
            raise NotImplementedError('the naive filter has no valid_region')
        dims = (1, 2) if self.channels_last else (2, 3)
        size = (x.shape[dims[0]], x.shape[dims[1]])
        dtype = x.dtype
        x = x.to(torch.float32)
        spectrum = torch.fft.rfft2(x, dim=dims, norm='ortho')
        weight = naive_resize(self.complex_weight.float(), self.spatial_size,
                              size, self.resize_mode)
        weight = torch.view_as_complex(weight.contiguous())
        if not self.channels_last:
            weight = weight.permute(2, 0, 1)
        spectrum = spectrum * weight
        out = torch.fft.irfft2(spectrum, s=size, dim=dims, norm='ortho')
        return out.to(dtype)


def swap_filters(model: nn.Module, make_layer) -> nn.Module:
    """A copy of ``model`` with every GlobalFilter ``f`` replaced by
    ``make_layer(f)`` (parameters the new layer takes over stay shared)."""
    model = copy.deepcopy(model)
    for module in list(model.modules()):
        for child_name, child in module.named_children():
            if isinstance(child, GlobalFilter):
                setattr(module, child_name, make_layer(child))
    return model


def naive_copy(model: nn.Module) -> nn.Module:
    """``model`` with every GlobalFilter replaced by the naive layer."""
    return swap_filters(model, NaiveGlobalFilter)


class NoFilter(nn.Module):
    """The identity in a global filter's place."""

    def forward(self, x, valid_sizes=None):
        return x


def filterless_copy(model: nn.Module) -> nn.Module:
    """``model`` with every GlobalFilter replaced by the identity."""
    return swap_filters(model, lambda layer: NoFilter())


def parse_size(text: str):
    """``HxWxC`` or ``HxWxC:S`` -> (H, W, C, S); S defaults to H."""
    try:
        shape, _, stored = text.partition(':')
        height, width, channels = (int(v) for v in shape.split('x'))
        stored = int(stored) if stored else height
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'size {text!r} is not HxWxC[:S], e.g. 200x336x64:56')
    return height, width, channels, stored


def parse_image(text: str):
    """``S`` or ``HxW`` -> (H, W)."""
    try:
        sides = [int(v) for v in text.split('x')]
    except ValueError:
        sides = []
    if len(sides) not in (1, 2) or min(sides) < 1:
        raise argparse.ArgumentTypeError(
            f'image size {text!r} is not S or HxW, e.g. 1024 or 800x1344')
    return tuple(sides * 2 if len(sides) == 1 else sides)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--sizes', nargs='*', type=parse_size,
        default=[parse_size(s) for s in DEFAULT_SIZES],
        help='feature maps HxWxC, optionally :S, the size the filter is '
        'stored for (default H: no resize); none: skip the layer table')
    parser.add_argument(
        '--fractions', nargs='+', type=float, default=[1.0, 0.5, 0.25],
        help='AFNO hard_thresholding_fraction values')
    parser.add_argument('--batch', type=int, default=1)
    add_timing_options(parser, repeat=10, warmup=2)
    parser.add_argument(
        '--backward', action='store_true', help='time forward + backward')
    parser.add_argument('--out', help='also write the table to this file')
    parser.add_argument(
        '--no-engines', dest='engines', action='store_false',
        help='skip the table of the spectral engine implementations')
    parser.add_argument(
        '--backbone', metavar='FAMILY-ARCH',
        help='also compare a whole backbone, e.g. gfnet-h-s')
    parser.add_argument(
        '--image', type=parse_image, nargs='+', default=[(1024, 1024)],
        help='backbone input sizes, each S or HxW. Defaults to 1024')
    parser.add_argument(
        '--profile', action='store_true',
        help='with --backbone: also print the top operators of one forward '
        'of ours per size')
    parser.add_argument(
        '--distinct-sizes', type=int, metavar='N',
        help='with --backbone: memory of the resized-filter cache over N '
        'distinct input sizes')
    parser.add_argument(
        '--short', type=int, default=800,
        help='short side of the --distinct-sizes inputs. Defaults to 800')
    parser.add_argument(
        '--cache-sizes', type=int, nargs='+', default=[2, 0, -1],
        help='resize_cache_size values to compare (-1: unbounded). '
        'Defaults to 2 (the default), 0 and -1')
    args = parse_timing_args(parser, argv)
    if args.distinct_sizes and not args.backbone:
        parser.error('--distinct-sizes needs --backbone')
    return args


def time_layers(layers, x, args, amp: bool = False) -> list:
    """Median time of each layer on ``x``, the layers taking turns
    (``amp``: under bf16 autocast, fp16 on a GPU)."""

    def runner(layer):
        def run():
            with autocast(args.device, amp):
                out = layer(x)
            if args.backward:
                out.sum().backward()

        return run

    grad = torch.enable_grad() if args.backward else torch.no_grad()
    with grad:
        return median_times([runner(layer) for layer in layers], args.warmup,
                            args.repeat, args.device)


def autocast(device: str, enabled: bool):
    kind = 'cuda' if device.startswith('cuda') else 'cpu'
    dtype = torch.float16 if kind == 'cuda' else torch.bfloat16
    return torch.autocast(kind, dtype=dtype, enabled=enabled)


def engine_layers(channels: int, stored: int, device: str
                  ) -> Dict[str, GlobalFilter]:
    """A global filter per engine implementation and ``'auto'``, all with
    the weights of the ``'fft'`` one, in eval mode (resized filters kept, as
    in inference)."""
    layers = {impl: GlobalFilter(channels, stored, impl=impl).to(device).eval()
              for impl in (*COMPUTED_IMPLS, 'auto')}
    for layer in layers.values():
        layer.load_state_dict(layers['fft'].state_dict())
    return layers


def auto_pick(x: torch.Tensor, dtype: torch.dtype) -> str:
    """What ``'auto'`` chose for maps like ``x`` computed in ``dtype``
    (``'fft'`` where it timed nothing)."""
    key = SpectralTimings.key('filter', x, (1, 2), dtype)
    return TIMINGS.best(key) or 'fft'


def engine_rows(height, width, channels, stored, args) -> list:
    """Per precision, the global filter on an ``H x W x C`` map with each
    engine implementation, and ``auto``'s pick."""
    x = torch.randn(args.batch, height, width, channels, device=args.device)
    layers = engine_layers(channels, stored, args.device)
    with torch.no_grad():
        reference = layers['fft'](x)
    impls = (*COMPUTED_IMPLS, 'auto')
    rows = []
    for amp in (False, True):
        with torch.no_grad(), autocast(args.device, amp):
            errors = [relative_error(layers[impl](x), reference)
                      for impl in impls]  # 'auto' times its candidates here
            dtype = torch.get_autocast_dtype(x.device.type) if amp else \
                torch.float32
            pick = auto_pick(x, dtype)
        times = time_layers([layers[impl] for impl in impls], x, args, amp)
        rows.append([f'{height}x{width}x{channels}', str(dtype).split('.')[-1]]
                    + [f'{1e3 * t:.2f}' for t in times] +
                    [pick, f'{times[0] / times[-1]:.2f}x'] +
                    [f'{e:.1e}' for e in errors[:-1]])
    return rows


def engine_table(args) -> str:
    rows = [row for size in args.sizes for row in engine_rows(*size, args)]
    header = (['map (HxWxC)', 'compute'] +
              [f'{impl} ms' for impl in (*COMPUTED_IMPLS, 'auto')] +
              ['auto picks', 'auto vs fft'] +
              [f'{impl} rel. err' for impl in COMPUTED_IMPLS])
    return ('Spectral engine: the global filter per implementation (eval '
            'forward; relative error against float32 fft)\n\n' +
            format_table(header, rows) + '\n')


def max_difference(a: nn.Module, b: nn.Module, x) -> float:
    with torch.no_grad():
        out_a, out_b = a(x), b(x)
    if isinstance(out_a, torch.Tensor):
        out_a, out_b = [out_a], [out_b]
    return max((p - q).abs().max().item() for p, q in zip(out_a, out_b))


def layer_row(height, width, channels, stored, args):
    x = torch.randn(args.batch, height, width, channels,
                    device=args.device, requires_grad=args.backward)
    ours = GlobalFilter(channels, stored).to(args.device)
    naive = NaiveGlobalFilter(ours)
    ours.eval(), naive.eval()
    diff = max_difference(ours, naive, x)
    t_naive, t_ours = time_layers([naive, ours], x, args)
    blocks = next(b for b in (8, 4, 2, 1) if channels % b == 0)
    afno = time_layers([
        AFNO2d(channels, blocks, hard_thresholding_fraction=f).to(args.device)
        for f in args.fractions
    ], x, args)
    return ([f'{height}x{width}x{channels}', f'{stored}x{stored}',
             f'{1e3 * t_naive:.2f}', f'{1e3 * t_ours:.2f}',
             f'{t_naive / t_ours:.2f}x', f'{diff:.1e}'] +
            [f'{1e3 * t:.2f}' for t in afno] +
            [f'{afno[0] / t:.2f}x' for t in afno[1:]])


def build_backbone(name: str, resize_cache_size: int = 2) -> nn.Module:
    import mmspectral  # noqa: F401
    from mmspectral.registry import MODELS
    family, _, arch = name.partition('-')
    if family not in FAMILIES or not arch:
        raise SystemExit(f'--backbone {name!r}: expected FAMILY-ARCH with '
                         f'FAMILY one of {list(FAMILIES)}, e.g. gfnet-h-s')
    hierarchical = 'H' if arch.startswith('h-') else ''  # GFNetH, ...
    return MODELS.build(
        dict(type=FAMILIES[family] + hierarchical, arch=arch,
             resize_cache_size=resize_cache_size))


def backbone_row(ours: nn.Module, size, args) -> list:
    naive, filterless = naive_copy(ours), filterless_copy(ours)
    x = torch.randn(args.batch, 3, *size, device=args.device)
    diff = max_difference(ours, naive, x)
    t_naive, t_ours, t_free = time_layers([naive, ours, filterless], x, args)
    return [args.backbone, f'{size[0]}x{size[1]}', f'{1e3 * t_naive:.1f}',
            f'{1e3 * t_ours:.1f}', f'{1e3 * t_free:.1f}',
            f'{t_naive / t_ours:.2f}x', f'{t_naive / t_free:.2f}x',
            f'{diff:.1e}']


def operator_profile(model: nn.Module, size, args, rows: int = 12) -> str:
    """The operators taking most self time in one forward of ``model``."""
    from torch.profiler import profile
    x = torch.randn(args.batch, 3, *size, device=args.device)
    with torch.no_grad():
        model(x)  # warm-up: plans and cached filters
        with native_stderr_silenced(), profile() as prof:
            model(x)
    table = prof.key_averages().table(
        sort_by='self_cpu_time_total', row_limit=rows)
    return f'Top operators of {args.backbone} at {size[0]}x{size[1]}\n\n' \
        f'{table}\n'


def backbone_comparison(args) -> str:
    ours = build_backbone(args.backbone).to(args.device).eval()
    args.backward = False
    rows = [backbone_row(ours, size, args) for size in args.image]
    table = format_table(
        ['backbone', 'input', 'naive ms', 'ours ms', 'no filter ms',
         'speed-up', 'bound', 'max |diff|'], rows)
    text = ('Whole backbone, eval forward; "no filter" times it with every '
            'filter removed and "bound" = naive / no filter, the most any '
            f'filter implementation could gain\n\n{table}\n')
    if args.profile:
        text += ''.join('\n' + operator_profile(ours, size, args)
                        for size in args.image)
    return text


def distinct_sizes(count: int, short: int) -> list:
    """``count`` padded COCO-like sizes, landscape and portrait in turn."""
    sizes = [(short, short + 32 * (k // 2 + 1)) for k in range(count)]
    return [s if k % 2 == 0 else s[::-1] for k, s in enumerate(sizes)]


def rss_mib() -> float:
    """The process's resident memory after glibc has returned what it
    holds free to the system (else freed activations of the largest size
    seen stay resident and hide what is live)."""
    import ctypes
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return float('nan')


def cached_mib(model: nn.Module) -> float:
    return sum(cache.nbytes for cache in model.resize_caches()) / 2**20


def memory_over_sizes(name: str, cache_size: int, sizes, threads) -> list:
    """``(RSS MiB, cached MiB)`` after each size, in a fresh model with
    ``resize_cache_size=cache_size`` (-1: as many as there are sizes)."""
    if threads:
        torch.set_num_threads(threads)
    model = build_backbone(name, len(sizes) if cache_size < 0 else
                           cache_size).eval()
    readings = []
    with torch.no_grad():
        for size in sizes:
            model(torch.randn(1, 3, *size))
            readings.append((rss_mib(), cached_mib(model)))
    return readings


def cache_memory_report(args) -> str:
    sizes = distinct_sizes(args.distinct_sizes, args.short)
    spawn = multiprocessing.get_context('spawn')
    columns = {}
    for cache_size in args.cache_sizes:
        with spawn.Pool(1) as pool:
            columns[cache_size] = pool.apply(
                memory_over_sizes,
                (args.backbone, cache_size, sizes, args.threads))
    label = {c: ('unbounded' if c < 0 else str(c)) for c in columns}
    header = ['sizes seen', 'input'] + [
        f'{h} (cache {label[c]})' for c in columns
        for h in ('RSS MiB', 'cached MiB')
    ]
    rows = [[i + 1, f'{h}x{w}'] + [
        f'{columns[c][i][j]:.0f}' for c in columns for j in (0, 1)
    ] for i, (h, w) in enumerate(sizes)]
    text = (f'{args.backbone}, eval forward over {len(sizes)} distinct '
            'input sizes: process memory and the resized filters and '
            'position embeddings the caches hold, by resize_cache_size\n\n' +
            format_table(header, rows) + '\n')
    cached = build_backbone(args.backbone, 2).eval()
    uncached = build_backbone(args.backbone, 0).eval()
    uncached.load_state_dict(cached.state_dict())
    x = torch.randn(1, 3, *sizes[0], device=args.device)
    with torch.no_grad():
        hit, recompute = median_times(
            [lambda: cached(x), lambda: uncached(x)], args.warmup,
            args.repeat, args.device)
    text += ('\nForward at a repeated size '
             f'{sizes[0][0]}x{sizes[0][1]}: {1e3 * hit:.1f} ms with the '
             f'cache, {1e3 * recompute:.1f} ms recomputing every resize '
             f'({recompute / hit:.2f}x)\n')
    return text


def main(argv=None):
    args = parse_args(argv)
    header = ['map (HxWxC)', 'filter stored', 'naive GF ms', 'GF ms',
              'GF speed-up', 'max |diff|'] + [
        f'AFNO f={f:g} ms' for f in args.fractions
    ] + [f'AFNO speed-up f={f:g}' for f in args.fractions[1:]]
    mode = 'forward + backward' if args.backward else 'forward'
    threads = torch.get_num_threads()
    text = (f'{describe_machine(args.device)}\n{mode}, batch {args.batch}, '
            f'device {args.device}, {threads} CPU threads, median of '
            f'{args.repeat}\n')
    if args.sizes:
        rows = [layer_row(*size, args) for size in args.sizes]
        text += '\n' + format_table(header, rows) + '\n'
        if args.engines:
            text += '\n' + engine_table(args)
    if args.distinct_sizes:
        text += '\n' + cache_memory_report(args)
    elif args.backbone:
        text += '\n' + backbone_comparison(args)
    print_report(text, args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
