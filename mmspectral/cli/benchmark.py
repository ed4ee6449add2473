"""Backbone latency, throughput and peak memory versus input size, against
the peers a user would pick instead.

    python tools/analysis_tools/benchmark.py [--models gfnet-h-s swin-t ...]
        [--sizes 224 512 1024 2048 1024x2048] [--backward] [--amp]
        [--compile] [--spectral-impl auto fft dft factored]
        [--device cpu|cuda] [--threads N] [--repeat 5] [--warmup 1]
        [--batch 1] [--out-dir DIR]

Our backbones are built from mmspectral; the peers from the installed
libraries in the same run: Swin-T (mmdet), MiT-B2 (mmseg), ConvNeXt-T and
HorNet-T-GF (mmpretrain). Each model runs in eval mode under ``no_grad``
(``--backward``: train mode, forward + backward of the summed outputs).
Latency is the median of ``--repeat`` runs after ``--warmup``; CUDA runs are
synchronised. ``--amp`` autocasts to float16 on a GPU and to bfloat16 on a
CPU; our spectral layers then compute in that dtype unless their
implementation is ``fft`` (float32 ``torch.fft``). ``--spectral-impl`` times
each of our models with each named implementation of the spectral engine
(``spectral_impl`` of the backbone; default ``auto``). Peak memory is what
one more run allocates at its peak beyond what was already held (weights,
input, cached filters): from ``torch.cuda.max_memory_allocated`` on a GPU,
from the allocation events of torch's profiler on the CPU. A run that fails
(e.g. out of memory) is recorded as such and the others go on.

``--compile`` times every model eagerly and compiled (``torch.compile``
with inductor; for inference with freezing, the weights folded in as
constants) and prints the speed-up compiling gives each one.

Writes DIR/benchmark.md (the printed tables), DIR/benchmark.csv and
DIR/benchmark.png: time against pixels on log-log axes, each model with its
fitted scaling exponent (time ~ pixels^k).
"""
import argparse
import csv
import math
import os
import os.path as osp
import re
import sys

import numpy as np
import torch

from mmspectral.models.layers import SPECTRAL_IMPLS
from mmspectral.utils import (add_timing_options, describe_machine,
                              format_table, median_time,
                              native_stderr_silenced, parse_timing_args,
                              print_report)

# name: (registry scope, backbone config)
MODELS = {
    'gfnet-h-ti': ('mmspectral', dict(type='GFNetH', arch='h-ti')),
    'gfnet-h-s': ('mmspectral', dict(type='GFNetH', arch='h-s')),
    'gfnet-xs': ('mmspectral', dict(type='GFNet', arch='xs')),
    'spectformer-h-s': ('mmspectral', dict(type='SpectFormerH', arch='h-s')),
    'hornet-t-gf': ('mmspectral', dict(type='HorNet', arch='t-gf')),
    'afno-mit-b2': ('mmspectral', dict(type='AFNOMiT', arch='b2')),
    'swin-t (mmdet)': ('mmdet', dict(type='SwinTransformer')),
    'mit-b2 (mmseg)': ('mmseg', dict(
        type='MixVisionTransformer', embed_dims=64, num_layers=[3, 4, 6, 3],
        num_heads=[1, 2, 5, 8])),
    'convnext-t (mmpretrain)': ('mmpretrain', dict(
        type='ConvNeXt', arch='tiny', out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False)),
    'hornet-t-gf (mmpretrain)': ('mmpretrain', dict(
        type='HorNet', arch='tiny-gf', out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False)),
}  # yapf: disable

DEFAULT_MODELS = ('gfnet-h-s', 'spectformer-h-s', 'hornet-t-gf',
                  'afno-mit-b2', 'swin-t (mmdet)', 'mit-b2 (mmseg)',
                  'convnext-t (mmpretrain)', 'hornet-t-gf (mmpretrain)')
DEFAULT_SIZES = ('224', '512', '1024', '2048', '1024x2048')


def parse_size(text: str):
    match = re.fullmatch(r'(\d+)(?:x(\d+))?', text)
    if not match:
        raise argparse.ArgumentTypeError(
            f'size {text!r} is not N or HxW, e.g. 1024x2048')
    height = int(match.group(1))
    return height, int(match.group(2) or height)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--models', nargs='+', default=list(DEFAULT_MODELS),
        help=f'from: {", ".join(MODELS)}')
    parser.add_argument(
        '--sizes', nargs='+', type=parse_size,
        default=[parse_size(s) for s in DEFAULT_SIZES],
        help='input sizes, N or HxW')
    parser.add_argument('--batch', type=int, default=1)
    add_timing_options(parser, repeat=5, warmup=1)
    parser.add_argument(
        '--backward', action='store_true', help='time forward + backward')
    parser.add_argument(
        '--amp', action='store_true',
        help='autocast to float16 (CUDA) or bfloat16 (CPU)')
    parser.add_argument(
        '--compile', action='store_true',
        help='also time each model compiled (inductor) and print the '
        'speed-up')
    parser.add_argument(
        '--spectral-impl', nargs='+', default=['auto'],
        choices=SPECTRAL_IMPLS,
        help="our models' spectral_impl; several: each is timed")
    parser.add_argument('--out-dir', help='write .md, .csv and .png here')
    args = parse_timing_args(parser, argv)
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        parser.error(f'unknown model(s) {unknown}; choose from '
                     f'{list(MODELS)}')
    return args


def autocast_dtype(args) -> torch.dtype:
    return torch.float16 if args.device.startswith('cuda') else \
        torch.bfloat16


def build_backbone(name: str, spectral_impl: str = 'auto'
                   ) -> torch.nn.Module:
    from mmengine.registry import MODELS as ROOT
    from mmengine.registry import DefaultScope

    import mmspectral  # noqa: F401  (registers our backbones)
    scope, cfg = MODELS[name]
    cfg = dict(cfg)
    if scope != 'mmspectral':
        __import__(f'{scope}.models')
    elif spectral_impl != 'auto':
        cfg['spectral_impl'] = spectral_impl
    with DefaultScope.overwrite_default_scope(scope):
        return ROOT.build(cfg)


def model_variants(args) -> list:
    """``(row name, model name, spectral impl)`` of every model to time:
    ours once per ``--spectral-impl`` (named ``model [impl]`` unless only
    ``auto`` is timed), each peer once."""
    tagged = args.spectral_impl != ['auto']
    variants = []
    for name in args.models:
        if MODELS[name][0] != 'mmspectral':
            variants.append((name, name, 'auto'))
            continue
        variants += [(f'{name} [{impl}]' if tagged else name, name, impl)
                     for impl in args.spectral_impl]
    return variants


def _allocation_delta(event) -> int:
    # frees are '[memory]' events; allocations belong to the op making them
    if event.name == '[memory]':
        return event.cpu_memory_usage
    return event.self_cpu_memory_usage


def cpu_peak_mib(run) -> float:
    """Peak of the tensor memory ``run()`` allocates on the CPU, from the
    allocation and free events of torch's profiler."""
    from torch.profiler import ProfilerActivity, profile
    with native_stderr_silenced(), profile(
            activities=[ProfilerActivity.CPU], profile_memory=True) as p:
        run()
    deltas = sorted((e.time_range.start, _allocation_delta(e))
                    for e in p.events() if _allocation_delta(e))
    current = peak = 0
    for _, delta in deltas:
        current += delta
        peak = max(peak, current)
    return peak / 2**20


def peak_memory_mib(run, device: str) -> float:
    """Peak memory ``run()`` allocates beyond what was held before, MiB."""
    if not device.startswith('cuda'):
        return cpu_peak_mib(run)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    run()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def step_fn(model, x, args):
    outputs = lambda: model(x)  # noqa: E731

    def run():
        with torch.autocast(torch.device(args.device).type,
                            dtype=autocast_dtype(args), enabled=args.amp):
            outs = outputs()
        if args.backward:
            sum(o.float().sum() for o in outs).backward()
            model.zero_grad(set_to_none=True)

    return run


def measure(model, size, args, warmup: int = None):
    """(median seconds, peak MiB) of one batch at ``size``."""
    x = torch.randn(args.batch, 3, *size, device=args.device)
    model.train(args.backward)
    run = step_fn(model, x, args)
    with torch.set_grad_enabled(args.backward):
        seconds = median_time(run, args.warmup if warmup is None else warmup,
                              args.repeat, args.device)
        peak = peak_memory_mib(run, args.device)
    return seconds, peak


def fit_exponent(pixels, seconds):
    """k of ``seconds ~ pixels^k`` by least squares on log-log axes."""
    points = [(p, s) for p, s in zip(pixels, seconds) if math.isfinite(s)]
    if len(points) < 2:
        return float('nan')
    logp, logs = np.log([p for p, _ in points]), np.log([s for _, s in points])
    return float(np.polyfit(logp, logs, 1)[0])


def compiled(model: torch.nn.Module, args) -> torch.nn.Module:
    """``torch.compile`` with inductor; for inference, freezing (weights as
    constants), which inductor applies to models run under no_grad."""
    import torch._inductor.config as inductor_config
    inductor_config.freezing = not args.backward
    return torch.compile(model)


def run_benchmark(args):
    results = {}
    variants = model_variants(args)
    names = [(v, c) for v in variants for c in (
        (False, True) if args.compile else (False, ))]
    for (row, name, impl), compile_it in names:
        key = f'{row} compiled' if compile_it else row
        model = build_backbone(name, impl).to(args.device)
        if compile_it:
            model = compiled(model, args)
        results[key] = {}
        for size in args.sizes:
            try:
                # a compiled model's first calls compile and autotune
                results[key][size] = measure(
                    model, size, args,
                    max(args.warmup, 3) if compile_it else None)
            except (RuntimeError, MemoryError) as err:  # OOM and friends
                print(f'{name} at {size[0]}x{size[1]} failed: '
                      f'{str(err).splitlines()[0]}', file=sys.stderr)
                results[key][size] = (float('nan'), float('nan'))
            seconds, peak = results[key][size]
            print(f'{key} {size[0]}x{size[1]}: {1e3 * seconds:.1f} ms, '
                  f'{peak:.0f} MiB', file=sys.stderr, flush=True)
        del model
    return results


def describe_run(args) -> str:
    mode = 'forward + backward (train mode)' if args.backward else \
        'forward (eval, no_grad)'
    if args.device.startswith('cuda'):
        where = torch.cuda.get_device_name(torch.device(args.device))
        where += ', AMP float16' if args.amp else ', float32'
    else:
        where = (f'CPU, {torch.get_num_threads()} threads, ' +
                 ('AMP bfloat16' if args.amp else 'float32'))
    return (f'{describe_machine(args.device)}\n{mode}, batch {args.batch}, '
            f'{where}; median of {args.repeat} after {args.warmup} warm-up')


def fmt(value, spec):
    return format(value, spec) if math.isfinite(value) else 'failed'


def fmt_ratio(value):
    return fmt(value, '.2f') + 'x' if math.isfinite(value) else 'failed'


def is_ours(name: str) -> bool:
    base = name.replace(' compiled', '').split(' [')[0]
    return MODELS[base][0] == 'mmspectral'


def peer_ratios(results, args) -> list:
    """A row per (our model, peer) pair run the same way (both eager or
    both compiled): the peer's time over ours at each size."""
    rows = []
    for ours in filter(is_ours, results):
        for peer in results:
            if is_ours(peer) or peer.endswith(' compiled') != ours.endswith(
                    ' compiled'):
                continue
            rows.append([f'{ours} vs {peer}'] + [
                fmt_ratio(results[peer][s][0] / results[ours][s][0])
                for s in args.sizes])
    return rows


def tables(results, args) -> str:
    sizes = [f'{h}x{w}' for h, w in args.sizes]
    pixels = [h * w for h, w in args.sizes]
    latency, throughput, memory = [], [], []
    for name, by_size in results.items():
        seconds = [by_size[s][0] for s in args.sizes]
        latency.append([name] + [fmt(1e3 * t, '.1f') for t in seconds] +
                       [fmt(fit_exponent(pixels, seconds), '.2f')
                        if len(pixels) > 1 else '-'])
        throughput.append([name] + [fmt(args.batch / t, '.2f')
                                    for t in seconds])
        memory.append([name] + [fmt(by_size[s][1], '.0f')
                                for s in args.sizes])
    sections = []
    ratios = peer_ratios(results, args)
    if ratios:
        sections.append('Speed of ours against each peer (peer time / our '
                        'time; > 1: ours is faster)\n\n' +
                        format_table(['ours vs peer'] + sizes, ratios))
    if args.compile:
        speedups = [[name] + [
            fmt_ratio(by_size[s][0] / results[f'{name} compiled'][s][0])
            for s in args.sizes
        ] for name, by_size in results.items() if not name.endswith(
            ' compiled')]
        sections.append('Speed-up of torch.compile (eager / compiled)\n\n' +
                        format_table(['model'] + sizes, speedups))
    return '\n\n'.join([
        describe_run(args),
        'Latency (ms); k: fitted exponent of time ~ pixels^k\n\n' +
        format_table(['model'] + sizes + ['k'], latency),
        'Throughput (images/s)\n\n' +
        format_table(['model'] + sizes, throughput),
        'Peak memory (MiB)\n\n' + format_table(['model'] + sizes, memory),
    ] + sections) + '\n'


def write_csv(results, args, path):
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['model', 'height', 'width', 'latency_ms',
                         'images_per_s', 'peak_mib'])
        for name, by_size in results.items():
            for (height, width), (seconds, peak) in by_size.items():
                writer.writerow([name, height, width, 1e3 * seconds,
                                 args.batch / seconds, peak])


def plot(results, args, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 5))
    for name, by_size in results.items():
        points = sorted((h * w, by_size[(h, w)][0]) for h, w in args.sizes
                        if math.isfinite(by_size[(h, w)][0]))
        if not points:
            continue
        pixels, seconds = zip(*points)
        k = fit_exponent(pixels, seconds)
        style = '-' if is_ours(name) else '--'
        ax.loglog(pixels, [1e3 * s for s in seconds], style, marker='o',
                  label=f'{name} (k={k:.2f})')
    ax.set_xlabel('input pixels')
    ax.set_ylabel('latency (ms)')
    ax.set_title(describe_run(args).split(';')[0], fontsize=9)
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    results = run_benchmark(args)
    text = tables(results, args)
    if args.out_dir:
        os.makedirs(args.out_dir, exist_ok=True)
    print_report(text, args.out_dir and osp.join(args.out_dir, 'benchmark.md'))
    if args.out_dir:
        write_csv(results, args, osp.join(args.out_dir, 'benchmark.csv'))
        plot(results, args, osp.join(args.out_dir, 'benchmark.png'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
