"""Speed of the deployed backbones: PyTorch eager against ONNX Runtime and
OpenVINO, one table per family, all from one run.

    python tools/deployment/benchmark_deploy.py [--backbones gfnet-h-s ...]
        [--sizes 512 1024] [--runtimes eager onnxruntime ...] [--fft matmul]
        [--repeat 5] [--warmup 1] [--threads N] [--work-dir DIR]
        [--layer-sizes 200x336x64 ...] [--out table.md]

Each backbone (random weights: speed does not depend on them) is exported
once per size with the ``--fft`` lowering, then every runtime is timed on
the same input, taking turns (median of ``--repeat`` runs after
``--warmup``), with the same number of threads; no thread pool spins or
pins cores between runs (``OMP_WAIT_POLICY=PASSIVE``, ONNX Runtime without
spinning, OpenVINO without pinning), so the turns do not slow each other
down. The runtimes: ``eager``
(PyTorch, float32, torch.fft), ``onnxruntime`` (float32), ``onnxruntime-
int8`` (dynamic int8 quantisation of the network's own MatMul/Gemm weights;
the DFT matrices and filters stay float), ``openvino`` (float32) and
``openvino-bf16`` (bf16 inference precision, on CPUs that have it). Each
cell is the median time in ms, the speed-up over eager, and the largest
absolute difference of the outputs to eager's.

``--layer-sizes`` adds a table of one global filter layer per feature map
``HxWxC`` in every runtime and both lowerings (``matmul`` and ``dft``): the
measurement behind the lowering chosen for each runtime.
"""
import argparse
import os
import os.path as osp
import sys
import tempfile

# the runtimes take turns on the same cores: no thread pool may keep them
# busy-waiting between runs (set before torch's OpenMP starts)
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mmspectral.utils import (format_table, median_times,  # noqa: E402
                              print_report)

FAMILIES = {
    'gfnet': 'GFNet',
    'afno': 'AFNO',
    'afnomit': 'AFNOMiT',
    'hornet': 'HorNet',
    'spectformer': 'SpectFormer'
}
DEFAULT_BACKBONES = ('gfnet-h-s', 'afno-s', 'afnomit-b2', 'hornet-t-gf',
                     'spectformer-h-s')
RUNTIMES = ('eager', 'onnxruntime', 'onnxruntime-int8', 'openvino',
            'openvino-bf16')
DEFAULT_LAYERS = ('200x336x64', '256x256x96', '128x128x192', '64x64x384',
                  '32x32x768')


def parse_backbone(text: str):
    family, _, arch = text.partition('-')
    if family not in FAMILIES or not arch:
        raise argparse.ArgumentTypeError(
            f'backbone {text!r} is not FAMILY-ARCH with FAMILY one of '
            f'{list(FAMILIES)}, e.g. gfnet-h-s')
    return text


def parse_layer(text: str):
    try:
        sizes = tuple(int(v) for v in text.split('x'))
    except ValueError:
        sizes = ()
    if len(sizes) != 3 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f'layer size {text!r} is not HxWxC, e.g. 200x336x64')
    return sizes


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--backbones', nargs='*', type=parse_backbone,
        default=list(DEFAULT_BACKBONES),
        help='FAMILY-ARCH backbones, one table each; none: skip')
    parser.add_argument(
        '--sizes', nargs='+', type=int, default=[512, 1024],
        help='square input sizes. Defaults to 512 1024')
    parser.add_argument(
        '--runtimes', nargs='+', choices=RUNTIMES, default=list(RUNTIMES),
        help='runtimes to time (eager is always the reference)')
    parser.add_argument(
        '--fft', choices=('matmul', 'dft'), default='matmul',
        help='lowering of the exported backbones. Defaults to matmul')
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument(
        '--threads', type=int, default=os.cpu_count(),
        help='threads of every runtime. Defaults to all cores')
    parser.add_argument(
        '--work-dir', help='keep the exported models here (default: a '
        'temporary folder, removed afterwards)')
    parser.add_argument(
        '--layer-sizes', nargs='*', type=parse_layer, default=[],
        metavar='HxWxC',
        help='also time one global filter layer on these maps in both '
        'lowerings (no value: the default maps)')
    parser.add_argument('--out', help='also write the tables to this file')
    args = parser.parse_args(argv)
    if min(args.sizes) < 32:
        parser.error('--sizes must be at least 32')
    return args


def available(runtime: str) -> bool:
    module = 'torch' if runtime == 'eager' else runtime.split('-')[0]
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def build_backbone(name: str) -> torch.nn.Module:
    import mmspectral  # noqa: F401
    from mmspectral.registry import MODELS
    family, _, arch = name.partition('-')
    hierarchical = 'H' if arch.startswith('h-') else ''  # GFNetH, ...
    cfg = dict(type=FAMILIES[family] + hierarchical, arch=arch)
    if family == 'hornet':  # the dense layout, as the detection configs
        cfg.update(out_indices=(0, 1, 2, 3), gap_before_final_norm=False)
    return MODELS.build(cfg).eval()


class Wrapped(torch.nn.Module):
    """A module returning a tuple of tensors."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        out = self.module(x)
        return tuple(out) if isinstance(out, (list, tuple)) else (out, )


def runtime_call(runtime: str, path: str, threads: int, work_dir: str):
    """A function running the exported ``path`` in ``runtime``."""
    from mmspectral.deploy.runtime import Runtime, quantize_int8
    backend, _, precision = runtime.partition('-')
    precision = precision or 'fp32'
    if precision == 'int8':
        quantized = osp.join(work_dir,
                             osp.basename(path).replace('.onnx',
                                                        '_int8.onnx'))
        if not osp.exists(quantized):
            quantize_int8(path, quantized)
        path, precision = quantized, 'fp32'
    return Runtime(path, backend, threads, precision, share_cpu=True)


def time_model(module, inputs, runtimes, lowering, args, work_dir, name):
    """Median times and output differences of ``module`` in each runtime,
    eager first."""
    from mmspectral.deploy.export import export_onnx
    x = inputs[0]
    with torch.no_grad():
        expected = [o.numpy() for o in module(*inputs)]
    path = osp.join(work_dir, f'{name}_{lowering}.onnx')
    if not osp.exists(path):
        export_onnx(module, inputs, path, lowering)
    calls = [lambda: module(*inputs)]
    for runtime in runtimes:
        run = runtime_call(runtime, path, args.threads, work_dir)
        calls.append(lambda run=run: run(x.numpy()))
    diffs = [0.0]
    for call in calls[1:]:
        out = call()
        diffs.append(max(
            float(np.abs(o - e).max()) for o, e in zip(out, expected)))
    with torch.no_grad():
        times = median_times(calls, args.warmup, args.repeat)
    return times, diffs


def cell(time: float, eager: float, diff: float) -> str:
    text = f'{1e3 * time:.0f} ({eager / time:.2f}x)'
    return text if diff == 0 else f'{text}, {diff:.0e}'


def backbone_table(name: str, runtimes, args, work_dir) -> str:
    module = Wrapped(build_backbone(name))
    rows = []
    for size in args.sizes:
        x = torch.randn(1, 3, size, size, generator=torch.Generator()
                        .manual_seed(size))
        times, diffs = time_model(module, [x], runtimes, args.fft, args,
                                  work_dir, f'{name}_{size}')
        rows.append([f'{size}x{size}', args.fft, f'{1e3 * times[0]:.0f}'] +
                    [cell(t, times[0], d)
                     for t, d in zip(times[1:], diffs[1:])])
        print(f'[benchmark] {name} {size}: done', file=sys.stderr,
              flush=True)
    header = ['input', 'lowering', 'eager ms'] + [f'{r} ms' for r in runtimes]
    return f'{name} backbone\n\n' + format_table(header, rows)


def layer_table(sizes, runtimes, args, work_dir) -> str:
    from mmspectral.models.layers import GlobalFilter

    class Layer(torch.nn.Module):

        def __init__(self, layer):
            super().__init__()
            self.layer = layer

        def forward(self, x):
            return (self.layer(x), )

    rows = []
    for height, width, channels in sizes:
        layer = Layer(GlobalFilter(channels, 14).eval())
        x = torch.randn(1, height, width, channels)
        row = [f'{height}x{width}x{channels}']
        for lowering in ('matmul', 'dft'):
            times, diffs = time_model(layer, [x], runtimes, lowering, args,
                                      work_dir,
                                      f'layer_{height}x{width}x{channels}')
            if lowering == 'matmul':
                row.append(f'{1e3 * times[0]:.1f}')
            row += [cell(t, times[0], d)
                    for t, d in zip(times[1:], diffs[1:])]
        rows.append(row)
        print(f'[benchmark] layer {row[0]}: done', file=sys.stderr,
              flush=True)
    header = ['map HxWxC', 'torch.fft ms'] + [
        f'{r} {lowering} ms' for lowering in ('matmul', 'dft')
        for r in runtimes
    ]
    return 'One global filter layer (channels last, filter resized from ' \
        '14x14)\n\n' + format_table(header, rows)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    runtimes = [r for r in args.runtimes if r != 'eager' and available(r)]
    missing = [r for r in args.runtimes if r != 'eager' and not available(r)]
    layer_sizes = args.layer_sizes
    if '--layer-sizes' in (argv if argv is not None else sys.argv) and \
            not layer_sizes:
        layer_sizes = [parse_layer(s) for s in DEFAULT_LAYERS]
    with tempfile.TemporaryDirectory() as tmp:
        work_dir = args.work_dir or tmp
        os.makedirs(work_dir, exist_ok=True)
        tables = [backbone_table(b, runtimes, args, work_dir)
                  for b in args.backbones]
        layer_runtimes = [r for r in runtimes if not r.endswith('int8')]
        if layer_sizes:
            tables.append(layer_table(layer_sizes, layer_runtimes, args,
                                      work_dir))
    notes = [f'{args.threads} threads, torch {torch.__version__}; cells: '
             'median ms (speed-up over eager), largest |difference| to '
             "eager's outputs"]
    if missing:
        notes.append(f'not installed, skipped: {", ".join(missing)}')
    print_report('\n\n'.join(tables + notes) + '\n', args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
