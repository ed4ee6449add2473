"""The parity table: exported models against PyTorch, every family and head.

    python tools/deployment/parity_report.py [--shape 500 740]
        [--configs CONFIG ...] [--backbone-ffts matmul dft]
        [--backends onnxruntime openvino] [--work-dir DIR] [--out FILE]

For each config (default: the repo's classification, RetinaNet, Mask R-CNN
and SegFormer configs of every family, plus each family's backbone alone in
both lowerings) the model is exported at ``--shape`` (odd by default) with
random weights and run in every backend on one photo-like test image, sent
through the same preprocessing as ``onnx_inference.py``; PyTorch gets the
same batch and predicts as its library does (mmdet's and mmseg's own
post-processing). Detector heads get the score spread of trained ones
first (:func:`mmspectral.deploy.parity.make_decisive`: an untrained head
scores everything alike and rounding would pick the winners). Columns:
largest absolute difference of features / logits (and the largest value,
for scale), share of equal argmax labels, and for detectors the detections
matched (same label, box IoU > 0.99) out of PyTorch's and the export's,
the smallest box IoU, the pooled mask IoU and the largest score difference.
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
import time

import torch

from mmspectral.utils import format_table, print_report

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HEADS = {
    'gfnet': ('gfnet-h-ti_8xb128_in1k', 'retinanet_gfnet-h-ti_fpn_1x_coco',
              'mask-rcnn_gfnet-h-ti_fpn_1x_coco',
              'segformer_gfnet-h-ti_8xb1-160k_cityscapes-1024x1024'),
    'afno': ('afno-ti_8xb128_in1k', 'retinanet_afno-ti_fpn_1x_coco',
             'mask-rcnn_afno-ti_fpn_1x_coco'),
    'afno-mit': ('segformer_afno-mit-b0_8xb1-160k_cityscapes-1024x1024', ),
    'hornet': ('hornet-t-gf_8xb128_in1k', 'retinanet_hornet-t-gf_fpn_1x_coco',
               'mask-rcnn_hornet-t-gf_fpn_1x_coco',
               'segformer_hornet-t-gf_8xb1-160k_cityscapes-1024x1024'),
    'spectformer': ('spectformer-h-s_8xb128_in1k',
                    'retinanet_spectformer-h-s_fpn_1x_coco',
                    'mask-rcnn_spectformer-xs_fpn_1x_coco',
                    'segformer_spectformer-h-s_8xb1-160k_cityscapes-'
                    '1024x1024'),
}
# one dense config per family for its backbone rows
BACKBONES = {
    'gfnet': 'mask-rcnn_gfnet-h-ti_fpn_1x_coco',
    'afno': 'mask-rcnn_afno-ti_fpn_1x_coco',
    'afno-mit': 'segformer_afno-mit-b0_8xb1-160k_cityscapes-1024x1024',
    'hornet': 'mask-rcnn_hornet-t-gf_fpn_1x_coco',
    'spectformer': 'mask-rcnn_spectformer-h-s_fpn_1x_coco',
}


def config_path(name: str) -> str:
    """``configs/*/NAME.py``."""
    for folder in sorted(os.listdir(osp.join(REPO, 'configs'))):
        candidate = osp.join(REPO, 'configs', folder, name + '.py')
        if osp.isfile(candidate):
            return candidate
    raise FileNotFoundError(f'no config {name}.py in configs/')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--shape', type=int, nargs=2, default=[500, 740], metavar=('H', 'W'),
        help='image size of the exports. Defaults to 500 740')
    parser.add_argument(
        '--configs', nargs='+',
        help='config files (default: every family and head, see above)')
    parser.add_argument(
        '--backbone-ffts', nargs='*', default=['matmul', 'dft'],
        choices=('matmul', 'dft'),
        help='lowerings of the backbone-only rows (none: no such rows)')
    parser.add_argument(
        '--fft', choices=('matmul', 'dft'), default='matmul',
        help='lowering of the full models. Defaults to matmul')
    parser.add_argument(
        '--backends', nargs='+', choices=('onnxruntime', 'openvino'),
        default=['onnxruntime', 'openvino'])
    parser.add_argument(
        '--work-dir', help='keep the exported models here (default: a '
        'temporary folder)')
    parser.add_argument('--out', help='also write the table to this file')
    return parser.parse_args(argv)


def available_backends(names):
    out = []
    for name in names:
        try:
            __import__(name)
            out.append(name)
        except ImportError:
            print(f'[parity] {name} is not installed: skipped',
                  file=sys.stderr)
    return out


def fmt(value) -> str:
    if isinstance(value, float):
        return f'{value:.1e}' if abs(value) < 1e-2 and value else \
            f'{value:.4g}'
    return str(value)


def figures_cells(task, figures):
    if task in ('retinanet', 'mask_rcnn'):
        matched = (f'{figures["matched"]}/{figures["ref"]} '
                   f'(export {figures["deployed"]})')
        return ['', '', matched, fmt(figures['min_box_iou']),
                fmt(figures.get('mask_iou', '')),
                fmt(figures['max_score_diff'])]
    return [f'{fmt(figures["max_abs_diff"])} (of {fmt(figures["max_abs"])})',
            fmt(figures.get('argmax_agreement', '')), '', '', '', '']


def check_rows(cfg_path, backbone_only, lowering, backends, args, work_dir):
    """Export one model and compare it in every backend."""
    from mmspectral.deploy.build import (export_config, load_model, model_task,
                                         preprocess_meta)
    from mmspectral.deploy.parity import (compare, deployed, make_decisive,
                                          photo_like_image, reference)
    from mmspectral.deploy.runtime import Runtime, preprocess
    from mmspectral.cli import load_config
    cfg = load_config(cfg_path)
    torch.manual_seed(0)
    model = load_model(cfg)
    task = 'backbone' if backbone_only else model_task(cfg, model)
    name = osp.splitext(osp.basename(cfg_path))[0]
    path = osp.join(work_dir, f'{name}_{task}_{lowering}.onnx')
    arrays, _ = preprocess(photo_like_image(*args.shape),
                           preprocess_meta(cfg, task, args.shape))
    inputs = [torch.from_numpy(a) for a in arrays]
    if task in ('retinanet', 'mask_rcnn'):
        make_decisive(model, task, inputs)
    start = time.time()
    if osp.exists(path):
        os.remove(path)
    meta = export_config(cfg, path, args.shape, lowering=lowering,
                         backbone_only=backbone_only, model=model)
    seconds = time.time() - start
    expected = reference(model, task, inputs)
    rows = []
    for backend in backends:
        outputs = Runtime(path, backend)(*arrays)
        figures = compare(task, expected, deployed(outputs, meta, inputs))
        rows.append([name, meta['backbone'], task, lowering, backend] +
                    figures_cells(task, figures))
    print(f'[parity] {name} {task} {lowering}: exported in {seconds:.0f} s',
          file=sys.stderr, flush=True)
    if not args.work_dir:
        os.remove(path)
    return rows


def main(argv=None):
    args = parse_args(argv)
    backends = available_backends(args.backends)
    jobs = []
    if args.configs:
        jobs += [(c, False, args.fft) for c in args.configs]
    else:
        for family, names in HEADS.items():
            for fft in args.backbone_ffts:
                jobs.append((config_path(BACKBONES[family]), True, fft))
            jobs += [(config_path(n), False, args.fft) for n in names]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work_dir = args.work_dir or tmp
        os.makedirs(work_dir, exist_ok=True)
        for cfg_path, backbone_only, lowering in jobs:
            try:
                rows += check_rows(cfg_path, backbone_only, lowering,
                                   backends, args, work_dir)
            except Exception as err:  # a row saying so; the others go on
                name = osp.splitext(osp.basename(cfg_path))[0]
                message = f'{type(err).__name__}: {err}'.splitlines()[0]
                print(f'[parity] {name}: {message}', file=sys.stderr,
                      flush=True)
                rows.append([name, '', 'backbone' if backbone_only else '',
                             lowering, 'failed', message[:80]] + [''] * 5)
    header = ['config', 'backbone', 'graph', 'lowering', 'runtime',
              'max |diff|', 'argmax equal', 'dets matched', 'min box IoU',
              'pooled mask IoU', 'max score diff']
    note = (f'{args.shape[0]}x{args.shape[1]} photo-like test image, random '
            'weights (detector heads made decisive), fp32, torch '
            f'{torch.__version__}')
    print_report(format_table(header, rows) + '\n\n' + note + '\n', args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
