"""Export a config's model (or its backbone) to ONNX, FFT layers included.

    python tools/deployment/pytorch2onnx.py CONFIG [CHECKPOINT] --shape H W
        --out FILE [--fft matmul|dft] [--dynamic] [--backbone-only]
        [--verify [--backend onnxruntime|openvino]] [--no-memory-check]
        [--cfg-options ...] [--debug]

Works for every family (GFNet, AFNO, AFNOMiT, HorNet, SpectFormer) in the
classification (mmpretrain), SegFormer and other EncoderDecoder (mmseg),
RetinaNet and Faster / Mask R-CNN (mmdet) configs. The graph takes the
preprocessed image batch (normalised as the config's data preprocessor
does, padded up to its size divisor: ``--shape 500 740`` gives a 512x768
input for mmdet); detectors also take each image's valid size and end in
standard ONNX ``NonMaxSuppression`` and ``RoiAlign`` (see
``docs/deployment.md`` for the outputs). The model's metadata holds what
``tools/deployment/onnx_inference.py`` needs.

``--fft`` picks how the spectral layers are lowered: ``matmul`` (the DFT as
real matrix products: every runtime, the fastest on CPU) or ``dft`` (the
ONNX ``DFT`` operator, for runtimes with a fast FFT kernel). The filters,
resized to the export size, and the DFT matrices are constants of the
graph, so the spatial size is fixed; ``--dynamic`` makes the batch axis
dynamic, nothing else. Without CHECKPOINT the weights are random (enough to
check an export). ``--verify`` runs the file once on a smooth test image and
prints its differences to the PyTorch model. An export whose estimated
memory (one forward pass, measured at a small size and scaled by the area)
exceeds the available memory is refused, with a warning above half of it.
The file gets the permissions the umask gives new files.
"""
import argparse
import os
import os.path as osp
import sys
import time

from mmspectral.checkpoint import is_remote
from .run_setup import (DictAction, check_output_path, load_config,
                        reported_errors)

FFT_CHOICES = ('matmul', 'dft')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument(
        'checkpoint', nargs='?', help='weights (default: random weights)')
    parser.add_argument(
        '--shape', type=int, nargs=2, required=True, metavar=('H', 'W'),
        help='image size the model is exported for')
    parser.add_argument('--out', required=True, help='the ONNX file to write')
    parser.add_argument(
        '--fft', choices=FFT_CHOICES, default='matmul',
        help='lowering of the spectral layers. Defaults to matmul')
    parser.add_argument(
        '--dynamic', action='store_true', help='dynamic batch axis')
    parser.add_argument(
        '--backbone-only', action='store_true',
        help="export the model's backbone only (its feature maps)")
    parser.add_argument(
        '--verify', action='store_true',
        help='run the exported file and compare it with PyTorch')
    parser.add_argument(
        '--backend', choices=('onnxruntime', 'openvino'),
        default='onnxruntime', help='runtime of --verify')
    parser.add_argument(
        '--no-memory-check', action='store_true',
        help='export even when the estimated memory exceeds what is '
        'available')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config entries, e.g. model.test_cfg.score_thr=0.3')
    parser.add_argument(
        '--debug', action='store_true',
        help='show the full traceback of an error')
    return parser.parse_args(argv)


def publish_with_umask(path: str):
    """Give ``path`` the permissions of a file the user creates (the
    exporter writes through a private temporary file, mode 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def check_shape(shape):
    if min(shape) < 1:
        raise ValueError(f'--shape must be two positive sizes, got {shape}')


def check_exporter():
    """The export needs onnx and onnxscript (requirements/deploy.txt)."""
    missing = []
    for module in ('onnx', 'onnxscript'):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ImportError(
            f'exporting needs {" and ".join(missing)}: pip install -r '
            'requirements/deploy.txt (or pip install mmspectral[deploy])')


# the export's memory is measured on a forward pass at most this large
PROBE_SIDE = 256


def available_memory() -> int:
    """Bytes of memory available to a new allocation (``MemAvailable``)."""
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_AVPHYS_PAGES')


def activation_bytes(module, inputs) -> int:
    """Bytes of every tensor the leaf modules of ``module`` return in one
    forward pass on ``inputs`` (what a traced graph holds at least)."""
    import torch
    total = [0]

    def count(_, __, output):
        for value in output if isinstance(output, (tuple, list)) else \
                [output]:
            if isinstance(value, torch.Tensor):
                total[0] += value.numel() * value.element_size()

    leaves = [m for m in module.modules() if not list(m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.no_grad():
            module(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return total[0]


def estimate_export_memory(cfg, model, shape, backbone_only) -> int:
    """Bytes an export at ``shape`` needs at least: the weights, and the
    activations of one forward pass of the exported graph, measured at a
    size of at most :data:`PROBE_SIDE` and scaled by the area (the
    feature maps and the resized filters grow with it)."""
    from mmspectral.deploy.build import (deploy_graph, example_inputs,
                                         network_shape)
    full = network_shape(cfg, shape)
    ratio = min(1., PROBE_SIDE / max(full))
    probe_image = tuple(max(32, int(s * ratio)) for s in shape)
    probe = network_shape(cfg, probe_image)
    graph = deploy_graph(cfg, model.eval(), backbone_only)
    inputs = example_inputs(graph.task, probe, 1, probe_image)
    scale = full[0] * full[1] / (probe[0] * probe[1])
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    return int(activation_bytes(graph.module, inputs) * scale + weights)


def check_export_memory(cfg, model, shape, backbone_only):
    """Refuse an export whose estimated memory exceeds the available
    memory; warn above half of it."""
    needed = estimate_export_memory(cfg, model, shape, backbone_only)
    available = available_memory()
    text = (f'exporting at {shape[0]}x{shape[1]} needs an estimated '
            f'{needed / 2**30:.1f} GiB or more (the activations of one '
            'forward pass, measured at a smaller size and scaled by the '
            f'area), and {available / 2**30:.1f} GiB are available')
    if needed > available:
        raise MemoryError(f'{text}: give a smaller --shape, or pass '
                          '--no-memory-check to try anyway')
    if needed > available / 2:
        print(f'warning: {text}', file=sys.stderr, flush=True)


def verify(model, meta, path, backend):
    """Parity figures of the exported file against ``model``."""
    from mmspectral.deploy.build import example_inputs
    from mmspectral.deploy.parity import compare, deployed, reference
    from mmspectral.deploy.runtime import Runtime
    inputs = example_inputs(meta['task'], tuple(meta['input_shape']), 1,
                            meta['image_shape'])
    outputs = Runtime(path, backend)(*[x.numpy() for x in inputs])
    figures = compare(meta['task'], reference(model, meta['task'], inputs),
                      deployed(outputs, meta, inputs))
    return ', '.join(f'{k} {v:.3g}' if isinstance(v, float) else f'{k} {v}'
                     for k, v in figures.items())


def main(argv=None):
    args = parse_args(argv)
    with reported_errors(args.debug):
        check_shape(args.shape)
        check_output_path(args.out, '--out')
        check_exporter()
        from mmspectral.deploy.build import export_config, load_model
        cfg = load_config(args.config, args.cfg_options)
        if args.checkpoint and not is_remote(args.checkpoint) and \
                not osp.isfile(args.checkpoint):
            raise FileNotFoundError(
                f'checkpoint {args.checkpoint!r} not found')
        model = load_model(cfg, args.checkpoint)
        if not args.checkpoint:
            print('no checkpoint: exporting random weights', flush=True)
        if not args.no_memory_check:
            check_export_memory(cfg, model, args.shape, args.backbone_only)
        start = time.time()
        meta = export_config(cfg, args.out, args.shape, args.checkpoint,
                             args.fft, args.dynamic, args.backbone_only,
                             model=model)
        publish_with_umask(args.out)
        size = os.path.getsize(args.out) / 2**20
        print(f'{args.out}: {meta["task"]} of {meta["backbone"]}, input '
              f'{meta["input_shape"][0]}x{meta["input_shape"][1]}'
              f'{" (dynamic batch)" if args.dynamic else ""}, spectral '
              f'layers as {args.fft}, {size:.1f} MiB, exported in '
              f'{time.time() - start:.0f} s')
        if args.verify:
            print(f'--verify ({args.backend}): '
                  f'{verify(model, meta, args.out, args.backend)}')
    return 0
