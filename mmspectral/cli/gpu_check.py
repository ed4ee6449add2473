"""What needs a GPU to be checked, in one command: mixed precision, cuFFT
plans, memory over many input sizes, speed against peers, an AMP training
step.

    python tools/analysis_tools/gpu_check.py --out gpu_check.md    # a GPU
    python tools/analysis_tools/gpu_check.py --device cpu --quick  # CI

Sections (each a table in the report):

1. ``amp``: every family forward + backward at odd sizes under float16
   autocast (with a GradScaler) and bfloat16 autocast, against float32: the
   relative error of the outputs and of the gradients, and whether they are
   finite.
2. ``plans``: training steps of GFNet-H-Ti over 50 multi-scale input sizes,
   with PyTorch's default cuFFT plan cache and with the bound
   :class:`~mmspectral.engine.CuFFTPlanCacheHook` sets: plans held, GPU
   memory (allocated, reserved, and used as the driver sees it) and step
   time.
3. ``filter cache``: eval forwards over distinct sizes: the resized filters
   and position embeddings held with the default ``resize_cache_size`` and
   without a bound.
4. ``speed``: ours against the peers that import here (mmpretrain's
   ConvNeXt-T and HorNet-T-GF), forward and training step at 512x512 and
   1024x1024, float32 and AMP.
5. ``amp step``: one step of mmengine's ``AmpOptimWrapper`` (float16 and
   bfloat16) on a GFNet-H-Ti classifier.
6. ``engines``: the global filter with each implementation of the spectral
   engine (``fft`` = cuFFT in float32, ``dft``, ``factored``) in float32,
   float16 and bfloat16, forward and forward + backward, on the first-stage
   maps of COCO (800x1333) and Cityscapes (1024x2048) inputs: time and
   relative error against float32 ``fft``, and what ``auto`` picks.

It needs only torch and pure-Python wheels (no compiled mmcv ops, so it runs
on a bare CUDA machine): ``pip install mmengine==0.10.7 mmcv-lite==2.1.0``,
``pip install --no-deps mmpretrain==1.2.0`` and torchvision (for the peers;
skipped if they do not import) and ``pip install --no-deps -e .`` in this
repository (AFNO-MiT, which builds on mmseg's MiT layers, is skipped where
mmseg does not import).
``--quick`` uses tiny archs and a few small sizes (seconds on a CPU);
without it, the published archs and real sizes (a few minutes on a GPU).
"""
import argparse
import math
import sys
import time
from typing import Callable, Dict, List, Tuple

import torch
import torch.nn as nn

from mmspectral.utils import (describe_machine, format_table, median_times,
                              print_report, relative_error)

# tiny and real archs of every family: (class name, arch, extra kwargs)
FAMILIES = {
    'GFNet': ('GFNet', dict(embed_dims=32, depths=2, mlp_ratio=2), 'ti'),
    'GFNetH': ('GFNetH', dict(embed_dims=[8, 16, 24, 32],
                              depths=[1, 1, 1, 1], mlp_ratio=2), 'h-ti'),
    'AFNO': ('AFNO', dict(embed_dims=32, depths=2, num_blocks=4,
                          mlp_ratio=2), 'ti'),
    'AFNOMiT': ('AFNOMiT', dict(embed_dims=[8, 16, 16, 32],
                                depths=[1, 1, 1, 1],
                                num_blocks=[1, 2, 2, 4]), 'b0'),
    'HorNet-GF': ('HorNet', dict(base_dim=8, depths=[1, 1, 1, 1],
                                 orders=[2, 3, 4, 5],
                                 global_filter_stages=(2, 3)), 't-gf'),
    'SpectFormer': ('SpectFormer', dict(embed_dims=32, depths=5,
                                        mlp_ratio=2, num_heads=2), 'xs'),
    'SpectFormerH': ('SpectFormerH', dict(
        embed_dims=[8, 16, 24, 32], depths=[1, 1, 1, 1],
        num_heads=[1, 2, 3, 4], mlp_ratios=[2, 2, 2, 2],
        stem_hidden_dim=8), 'h-s'),
}  # yapf: disable
DENSE = dict(out_indices=(0, 1, 2, 3))
# isotropic backbones return their one stride-16 map by default
ISOTROPIC = ('GFNet', 'AFNO', 'SpectFormer')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cuda')
    parser.add_argument(
        '--quick', action='store_true',
        help='tiny archs and small sizes (what CI runs on a CPU)')
    parser.add_argument(
        '--sections', nargs='+',
        default=['amp', 'plans', 'filter-cache', 'speed', 'amp-step',
                 'engines'],
        choices=['amp', 'plans', 'filter-cache', 'speed', 'amp-step',
                 'engines'])
    parser.add_argument('--out', help='also write the report to this file')
    args = parser.parse_args(argv)
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device here (use --device cpu '
                     '--quick to exercise the checks)')
    return args


def build(family: str, quick: bool, **kwargs) -> nn.Module:
    import mmspectral  # noqa: F401
    from mmspectral.registry import MODELS
    name, tiny, real = FAMILIES[family]
    if name == 'HorNet':
        kwargs.setdefault('gap_before_final_norm', False)
    dense = {} if name in ISOTROPIC else DENSE
    return MODELS.build(dict(type=name, arch=tiny if quick else real,
                             **dense, **kwargs))


def sync(device: str):
    if device.startswith('cuda'):
        torch.cuda.synchronize()


# -- 1. mixed precision -------------------------------------------------------

def forward_backward(model, x, dtype=None, scaler=None):
    """Outputs and parameter gradients of ``sum(mean(out**2))``."""
    model.zero_grad(set_to_none=True)
    with torch.autocast(x.device.type, dtype=dtype or torch.float32,
                        enabled=dtype is not None):
        outs = model(x)
        loss = sum(o.float().square().mean() for o in outs)
    (scaler.scale(loss) if scaler else loss).backward()
    scale = scaler.get_scale() if scaler else 1.0
    grads = [p.grad.float() / scale for p in model.parameters()
             if p.grad is not None]
    return [o.detach() for o in outs], torch.cat([g.flatten() for g in grads])


def amp_section(args) -> str:
    size = (61, 47) if args.quick else (257, 383)
    rows = []
    for family in FAMILIES:
        torch.manual_seed(0)
        try:
            model = build(family, args.quick).to(args.device).train()
        except ImportError as err:  # AFNO-MiT needs mmseg, absent on a
            # bare CUDA machine (mmseg needs mmcv's compiled ops)
            rows.append([family, '-', '-', '-', '-', f'skipped: {err}'])
            continue
        x = torch.randn(2, 3, *size, device=args.device)
        ref_outs, ref_grads = forward_backward(model, x)
        for dtype in (torch.float16, torch.bfloat16):
            scaler = torch.amp.GradScaler(x.device.type) \
                if dtype is torch.float16 else None
            outs, grads = forward_backward(model, x, dtype, scaler)
            finite = all(torch.isfinite(o).all() for o in outs) and bool(
                torch.isfinite(grads).all())
            out_error = max(relative_error(o, r)
                            for o, r in zip(outs, ref_outs))
            rows.append([family, str(dtype).split('.')[-1],
                         f'{size[0]}x{size[1]}', f'{out_error:.2e}',
                         f'{relative_error(grads, ref_grads):.2e}',
                         'yes' if finite else 'NO'])
    return ('Mixed precision against float32, forward + backward, batch 2 '
            '(relative L2 error; the FFT always runs in float32)\n\n' +
            format_table(['family', 'autocast', 'input', 'output error',
                          'gradient error', 'finite'], rows) + '\n')


# -- 2. cuFFT plans over multi-scale training ---------------------------------

def multiscale_sizes(count: int, quick: bool) -> List[Tuple[int, int]]:
    """mmdet-style multi-scale training sizes: the short side from 480 to
    800 in steps of 32, the long side at the aspect ratio of a 640x480 or
    480x640 image, padded to 32 (quick: 96-160)."""
    shorts = list(range(96, 161, 32) if quick else range(480, 801, 32))
    sizes = []
    for k in range(count):
        short = shorts[k % len(shorts)]
        long_side = int(math.ceil(short * 4 / 3 / 32) * 32) + 32 * (
            k // len(shorts) % 3)
        sizes.append((short, long_side) if k % 2 == 0 else (long_side,
                                                            short))
    return list(dict.fromkeys(sizes))


def gpu_memory(device: str) -> Dict[str, float]:
    if not device.startswith('cuda'):
        return {}
    free, total = torch.cuda.mem_get_info()
    return dict(allocated=torch.cuda.memory_allocated() / 2**20,
                reserved=torch.cuda.memory_reserved() / 2**20,
                used=(total - free) / 2**20)


def plan_cache_size(device: str):
    if not device.startswith('cuda'):
        return None
    return torch.backends.cuda.cufft_plan_cache[
        torch.cuda.current_device()].size


def train_over_sizes(args, bound: int = None) -> List[list]:
    from mmspectral.engine import CuFFTPlanCacheHook
    on_cuda = args.device.startswith('cuda')
    if on_cuda:
        cache = torch.backends.cuda.cufft_plan_cache[
            torch.cuda.current_device()]
        cache.clear()
        cache.max_size = 4096  # PyTorch's default
        if bound is not None:
            runner = type('Runner', (), {'logger': _QuietLogger()})()
            CuFFTPlanCacheHook(max_size=bound).before_run(runner)
        torch.cuda.empty_cache()
    torch.manual_seed(0)
    model = build('GFNetH', args.quick).to(args.device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    sizes = multiscale_sizes(6 if args.quick else 50, args.quick)
    rows, start = [], time.perf_counter()
    for i, size in enumerate(sizes, 1):
        x = torch.randn(2, 3, *size, device=args.device)
        loss = sum(o.square().mean() for o in model(x))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i % 10 == 0 or i == len(sizes) or args.quick:
            sync(args.device)
            memory = gpu_memory(args.device)
            plans = plan_cache_size(args.device)
            rows.append([
                'default (4096)' if bound is None else f'bound {bound}', i,
                '-' if plans is None else plans,
                *(f'{memory[k]:.0f}' if memory else '-'
                  for k in ('allocated', 'reserved', 'used')),
                f'{1e3 * (time.perf_counter() - start) / i:.1f}'
            ])
    return rows


class _QuietLogger:

    def info(self, message):
        pass


def plans_section(args) -> str:
    rows = train_over_sizes(args) + train_over_sizes(args, bound=256)
    note = '' if args.device.startswith('cuda') else (
        ' (on a CPU there is no cuFFT plan cache: only the steps run)')
    return ('GFNet-H-Ti training steps over distinct multi-scale sizes'
            f'{note}: plans cached and GPU memory (MiB) after each step\n\n'
            + format_table(['plan cache', 'sizes seen', 'plans',
                            'allocated', 'reserved', 'used (driver)',
                            'ms / step'], rows) + '\n')


# -- 3. resized-filter cache --------------------------------------------------

def filter_cache_section(args) -> str:
    sizes = [(s, s + 32 * k) for k, s in enumerate(
        [64, 96, 128, 64, 96, 128] if args.quick else
        [800, 800, 800, 1088, 800, 608, 800, 736, 960, 800, 704, 800])]
    rows = []
    for cache_size in (2, len(sizes)):
        model = build('GFNetH', args.quick,
                      resize_cache_size=cache_size).to(args.device).eval()
        with torch.no_grad():
            for i, size in enumerate(sizes, 1):
                model(torch.randn(1, 3, *size, device=args.device))
                if i in (1, 2, len(sizes) // 2, len(sizes)):
                    held = sum(c.nbytes for c in model.resize_caches())
                    memory = gpu_memory(args.device)
                    rows.append([
                        cache_size, i, f'{held / 2**20:.1f}',
                        f'{memory["allocated"]:.0f}' if memory else '-'
                    ])
    return ('GFNet-H-Ti eval forwards over distinct sizes: resized filters '
            'and position embeddings held, by resize_cache_size (the second '
            'keeps every size)\n\n' + format_table(
                ['resize_cache_size', 'sizes seen', 'cached MiB',
                 'allocated MiB'], rows) + '\n')


# -- 4. speed against peers ---------------------------------------------------

def peers(quick: bool) -> Dict[str, Callable[[], nn.Module]]:
    """Our backbones and the mmpretrain peers, if mmpretrain imports."""
    tiny = ' (tiny)' if quick else ''
    models = {
        f'gfnet-h-s{tiny} (ours)': lambda: build('GFNetH', quick)
        if quick else build_named('GFNetH', 'h-s'),
        f'hornet-t-gf{tiny} (ours)': lambda: build('HorNet-GF', quick),
    }
    try:
        import mmpretrain.models  # noqa: F401  (needs torchvision too)
        from mmengine.registry import DefaultScope
        from mmpretrain.registry import MODELS
    except ImportError as err:  # a bare machine may lack them
        print(f'[gpu_check] mmpretrain peers skipped: {err}', file=sys.stderr)
        return models

    def peer(cfg):
        def make():
            with DefaultScope.overwrite_default_scope('mmpretrain'):
                return MODELS.build(dict(cfg, out_indices=(0, 1, 2, 3),
                                         gap_before_final_norm=False))
        return make

    models['convnext-t (mmpretrain)'] = peer(dict(type='ConvNeXt',
                                                  arch='tiny'))
    models['hornet-t-gf (mmpretrain)'] = peer(dict(type='HorNet',
                                                   arch='tiny-gf'))
    return models


def build_named(name: str, arch: str) -> nn.Module:
    import mmspectral  # noqa: F401
    from mmspectral.registry import MODELS
    dense = {} if name in ISOTROPIC else DENSE
    return MODELS.build(dict(type=name, arch=arch, **dense))


def speed_section(args) -> str:
    sizes = [(64, 64)] if args.quick else [(512, 512), (1024, 1024)]
    repeat, warmup = (1, 0) if args.quick else (5, 2)
    rows = []
    for name, make in peers(args.quick).items():
        model = make().to(args.device)
        for size in sizes:
            x = torch.randn(1, 3, *size, device=args.device)
            cells = [name, f'{size[0]}x{size[1]}']
            for amp in (False, True):
                dtype = torch.float16 if args.device.startswith(
                    'cuda') else torch.bfloat16

                def forward(amp=amp, dtype=dtype):
                    model.eval()
                    with torch.no_grad(), torch.autocast(
                            x.device.type, dtype=dtype, enabled=amp):
                        model(x)

                def train_step(amp=amp, dtype=dtype):
                    model.train()
                    with torch.autocast(x.device.type, dtype=dtype,
                                        enabled=amp):
                        loss = sum(o.float().mean() for o in model(x))
                    loss.backward()

                times = median_times([forward, train_step], warmup, repeat,
                                     args.device)
                cells += [f'{1e3 * t:.1f}' for t in times]
            rows.append(cells)
    amp_name = 'fp16' if args.device.startswith('cuda') else 'bf16'
    return (f'Backbones, batch 1, median of {repeat} (ms)\n\n' +
            format_table(['model', 'input', 'fwd fp32', 'train fp32',
                          f'fwd {amp_name}', f'train {amp_name}'], rows) +
            '\n')


# -- 5. an AmpOptimWrapper step -----------------------------------------------

def amp_step_section(args) -> str:
    if not args.device.startswith('cuda'):
        return ("mmengine's AmpOptimWrapper needs CUDA (the tools train in "
                'float32 without it): skipped on this device\n')
    from mmengine.optim import AmpOptimWrapper
    rows = []
    for dtype in ('float16', 'bfloat16'):
        torch.manual_seed(0)
        backbone = build('GFNetH', args.quick).to(args.device).train()
        head = nn.Linear(backbone.out_channels[-1], 10).to(args.device)
        params = list(backbone.parameters()) + list(head.parameters())
        wrapper = AmpOptimWrapper(
            optimizer=torch.optim.AdamW(params, lr=1e-4), dtype=dtype)
        x = torch.randn(2, 3, 257, 383, device=args.device)
        target = torch.randint(0, 10, (2, ), device=args.device)
        with wrapper.optim_context(backbone):
            logits = head(backbone(x)[-1].mean((2, 3)))
            loss = nn.functional.cross_entropy(logits.float(), target)
        wrapper.update_params(loss)
        finite = all(torch.isfinite(p).all() for p in params)
        rows.append([dtype, f'{loss.item():.4f}',
                     f'{wrapper.loss_scaler.get_scale():g}',
                     'yes' if finite else 'NO'])
    return ("One AmpOptimWrapper step (mmengine) on GFNet-H-Ti + a linear "
            'head at 257x383\n\n' + format_table(
                ['dtype', 'loss', 'loss scale after', 'weights finite'],
                rows) + '\n')


# -- 6. spectral engine -------------------------------------------------------

def engine_rows(size, channels, dtype, args) -> List[list]:
    from mmspectral.cli.benchmark_layers import auto_pick, engine_layers
    from mmspectral.models.layers.spectral import COMPUTED_IMPLS
    x = torch.randn(1, *size, channels, device=args.device)
    layers = engine_layers(channels, 14, args.device)
    with torch.no_grad():
        reference = layers['fft'](x)
    amp = dtype != torch.float32
    rows = []
    for backward in (False, True):
        def run(impl):
            xi = x.detach().requires_grad_(backward)
            with torch.set_grad_enabled(backward), torch.autocast(
                    x.device.type, dtype=dtype, enabled=amp):
                out = layers[impl](xi)
            if backward:
                out.float().sum().backward()
            return out

        errors = [relative_error(run(impl).detach(), reference)
                  for impl in COMPUTED_IMPLS]
        run('auto')
        compute = dtype if amp else torch.float32
        pick = auto_pick(x, compute)
        times = median_times([lambda impl=impl: run(impl)
                              for impl in COMPUTED_IMPLS], 1,
                             2 if args.quick else 10, args.device)
        rows.append([f'{size[0]}x{size[1]}x{channels}',
                     str(dtype).split('.')[-1],
                     'fwd+bwd' if backward else 'fwd'] +
                    [f'{1e3 * t:.2f}' for t in times] + [pick] +
                    [f'{e:.1e}' for e in errors])
    return rows


def engines_section(args) -> str:
    from mmspectral.models.layers.spectral import COMPUTED_IMPLS

    # first-stage maps (stride 4) of COCO 800x1333 and Cityscapes 1024x2048
    maps = [((20, 34), 16), ((32, 64), 16)] if args.quick else \
        [((200, 334), 64), ((256, 512), 64)]
    rows = [row for size, channels in maps
            for dtype in (torch.float32, torch.float16, torch.bfloat16)
            for row in engine_rows(size, channels, dtype, args)]
    return format_table(
        ['map', 'dtype', 'pass'] + [f'{i} ms' for i in COMPUTED_IMPLS] +
        ['auto picks'] + [f'{i} rel. err' for i in COMPUTED_IMPLS], rows) + \
        '\n'


SECTIONS = {
    'amp': amp_section,
    'plans': plans_section,
    'filter-cache': filter_cache_section,
    'speed': speed_section,
    'amp-step': amp_step_section,
    'engines': engines_section,
}


def main(argv=None):
    args = parse_args(argv)
    device_name = torch.cuda.get_device_name() if args.device.startswith(
        'cuda') else 'CPU'
    text = (f'gpu_check on {device_name} ({args.device}), '
            f'{describe_machine(args.device)}, '
            f'{"quick" if args.quick else "full"}\n')
    for name in args.sections:
        start = time.perf_counter()
        text += f'\n## {name}\n\n' + SECTIONS[name](args)
        text += f'\n({time.perf_counter() - start:.1f} s)\n'
        print(f'[gpu_check] {name} done', file=sys.stderr)
    print_report(text, args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
