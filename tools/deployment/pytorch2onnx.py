"""Export a config's model (or its backbone) to ONNX, FFT layers included.

    python tools/deployment/pytorch2onnx.py CONFIG [CHECKPOINT] --shape H W
        --out FILE [--fft matmul|dft] [--dynamic] [--backbone-only]
        [--verify [--backend onnxruntime|openvino]] [--cfg-options ...]
        [--debug]

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
prints its differences to the PyTorch model.
"""
import argparse
import os
import os.path as osp
import sys
import time

from mmspectral.checkpoint import is_remote
from mmspectral.engine import (DictAction, check_output_path, load_config,
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
        '--cfg-options', nargs='+', action=DictAction,
        help='override config entries, e.g. model.test_cfg.score_thr=0.3')
    parser.add_argument(
        '--debug', action='store_true',
        help='show the full traceback of an error')
    return parser.parse_args(argv)


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
        start = time.time()
        meta = export_config(cfg, args.out, args.shape, args.checkpoint,
                             args.fft, args.dynamic, args.backbone_only,
                             model=model)
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


if __name__ == '__main__':
    sys.exit(main())
