"""Run an exported model on images with ONNX Runtime or OpenVINO and draw
its predictions as mmdet / mmseg / mmpretrain's visualizers do.

    python tools/deployment/onnx_inference.py MODEL.onnx IMAGES --out-dir DIR
        [--backend onnxruntime|openvino] [--precision fp32|bf16]
        [--threads N] [--score-thr T] [--debug]

IMAGES is an image file or a folder of them. Each image is resized (keeping
its aspect ratio) to the export size, normalised and padded as the model's
metadata says, run, and its predictions are mapped back to the original
image: boxes rescaled and masks pasted (detectors), logits cropped, resized
and arg-maxed (segmentors), softmax scores (classifiers). ``DIR`` gets one
drawing per image, named as the image, and ``predictions.json`` (boxes,
scores and labels; the top-5 classes; the class of each segmentation label
in the image). ``DIR`` must be new or empty. A model file that is not an
exported model (or whose metadata is broken) is an error naming it; an
image that cannot be read or run is named and skipped, the others are
predicted, and the exit status is 1.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from numbers import Real

from .run_setup import check_output_path, error_message, reported_errors

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('model', help='ONNX file of pytorch2onnx.py')
    parser.add_argument('images', help='an image or a folder of images')
    parser.add_argument('--out-dir', required=True, help='output folder')
    parser.add_argument(
        '--backend', choices=('onnxruntime', 'openvino'),
        default='onnxruntime', help='runtime. Defaults to onnxruntime')
    parser.add_argument(
        '--precision', choices=('fp32', 'bf16'), default='fp32',
        help='inference precision (bf16: OpenVINO only). Defaults to fp32')
    parser.add_argument('--threads', type=int, help='CPU threads')
    parser.add_argument(
        '--score-thr', type=float,
        help="detections drawn and saved above this score (default: the "
        "config's test threshold)")
    parser.add_argument(
        '--debug', action='store_true',
        help='show the full traceback of an error')
    return parser.parse_args(argv)


def list_images(source: str):
    if osp.isfile(source):
        return [source]
    if not osp.isdir(source):
        raise FileNotFoundError(f'{source!r} is neither an image nor a '
                                'folder')
    images = sorted(
        osp.join(source, name) for name in os.listdir(source)
        if name.lower().endswith(IMAGE_SUFFIXES))
    if not images:
        raise FileNotFoundError(
            f'{source} holds no images ({", ".join(IMAGE_SUFFIXES)})')
    return images


TASKS = ('classifier', 'segmentor', 'retinanet', 'mask_rcnn', 'backbone')


def _sizes(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0
        for v in value)


def _numbers(value, count: int) -> bool:
    return isinstance(value, list) and len(value) == count and all(
        isinstance(v, Real) and not isinstance(v, bool) for v in value)


def check_metadata(meta: dict, path: str):
    """The metadata the runtime helpers read must be there and well-formed.

    Raises:
        ValueError: naming the file and the entry.
    """
    problems = []
    if not meta.get('task'):
        raise ValueError(f'{path} has no mmspectral metadata: export it '
                         'with tools/deployment/pytorch2onnx.py')
    if meta['task'] not in TASKS:
        problems.append(f'task={meta["task"]!r} (one of {TASKS})')
    for key, required in (('input_shape', True), ('image_shape', False)):
        if (required or key in meta) and not _sizes(meta.get(key)):
            problems.append(f'{key}={meta.get(key)!r} (two sizes > 0)')
    for key in ('mean', 'std'):
        if not _numbers(meta.get(key), 3):
            problems.append(f'{key}={meta.get(key)!r} (three numbers)')
    if _numbers(meta.get('std'), 3) and 0 in meta['std']:
        problems.append(f'std={meta["std"]!r} (no zero)')
    if 'classes' in meta and not isinstance(meta['classes'], list):
        problems.append(f'classes={meta["classes"]!r} (a list)')
    if problems:
        raise ValueError(f'{path}: bad mmspectral metadata: '
                         f'{"; ".join(problems)}; export the model again '
                         'with tools/deployment/pytorch2onnx.py')


def load_runtime(args):
    """The model file loaded by the backend, its metadata checked.

    Raises:
        ValueError: naming the file when it is not an ONNX model the
            backend loads, or its metadata is broken.
    """
    from mmspectral.deploy.runtime import Runtime
    try:
        runtime = Runtime(args.model, args.backend, args.threads,
                          args.precision)
    except json.JSONDecodeError as err:
        raise ValueError(f'{args.model}: its mmspectral metadata is not '
                         f'valid JSON ({err}); export the model again with '
                         'tools/deployment/pytorch2onnx.py') from None
    except (FileNotFoundError, ValueError, ImportError):
        raise
    except Exception as err:
        raise ValueError(
            f'{args.model} is not an ONNX model that {args.backend} can '
            f'load ({type(err).__name__}: {error_message(err)[:300]})'
        ) from None
    check_metadata(runtime.meta, args.model)
    return runtime


def read_image(path: str):
    import cv2
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f'{path} is not a readable image')
    return image


def make_visualizer(meta: dict):
    """The library's visualizer for the model's task, with its classes."""
    from mmspectral.deploy.runtime import dataset_meta
    name = f'mmspectral-onnx-{id(meta)}'
    task = meta['task']
    if task in ('retinanet', 'mask_rcnn'):
        from mmdet.visualization import DetLocalVisualizer
        visualizer = DetLocalVisualizer(name=name)
    elif task == 'segmentor':
        from mmseg.visualization import SegLocalVisualizer
        visualizer = SegLocalVisualizer(name=name, alpha=0.5)
    elif task == 'classifier':
        from mmpretrain.visualization import UniversalVisualizer
        visualizer = UniversalVisualizer(name=name)
    else:
        raise ValueError(f'a {task} model has no predictions to draw; '
                         'export a full model, not --backbone-only')
    visualizer.dataset_meta = dataset_meta(meta)
    return visualizer


def draw(visualizer, meta, image_rgb, sample, out_file, score_thr):
    task = meta['task']
    if task == 'classifier':
        visualizer.visualize_cls(image_rgb, sample, draw_gt=False,
                                 out_file=out_file)
    elif task == 'segmentor':
        visualizer.add_datasample('image', image_rgb, sample, draw_gt=False,
                                  out_file=out_file)
    else:
        visualizer.add_datasample('image', image_rgb, sample, draw_gt=False,
                                  pred_score_thr=score_thr,
                                  out_file=out_file)


def record(meta: dict, sample) -> dict:
    """The JSON record of one image's prediction."""
    classes = meta.get('classes') or []

    def name(label):
        return classes[label] if label < len(classes) else str(label)

    task = meta['task']
    if task in ('retinanet', 'mask_rcnn'):
        pred = sample.pred_instances
        return dict(detections=[
            dict(bbox=[round(float(v), 2) for v in box],
                 score=round(float(score), 4), label=int(label),
                 name=name(int(label)))
            for box, score, label in zip(pred.bboxes, pred.scores,
                                         pred.labels)
        ])
    if task == 'segmentor':
        labels = sample.pred_sem_seg.data.unique().tolist()
        return dict(labels=[dict(label=int(v), name=name(int(v)))
                            for v in labels])
    scores = sample.pred_score
    top = scores.topk(min(5, len(scores)))
    return dict(top5=[
        dict(label=int(i), name=name(int(i)), score=round(float(s), 4))
        for s, i in zip(top.values, top.indices)
    ])


def predict(runtime, visualizer, path, out_dir, score_thr):
    """Run one image; returns its JSON record and the seconds the model
    took."""
    from mmspectral.deploy.runtime import preprocess, to_data_sample
    meta = runtime.meta
    image = read_image(path)
    inputs, info = preprocess(image, meta)
    start = time.perf_counter()
    outputs = runtime(*inputs)
    seconds = time.perf_counter() - start
    sample = to_data_sample(outputs, meta, info, score_thr=score_thr)
    draw(visualizer, meta, image[..., ::-1], sample,
         osp.join(out_dir, osp.basename(path)), score_thr)
    return record(meta, sample), seconds


def main(argv=None):
    args = parse_args(argv)
    with reported_errors(args.debug):
        images = list_images(args.images)
        check_output_path(args.out_dir, '--out-dir', folder=True)
        runtime = load_runtime(args)
        meta = runtime.meta
        visualizer = make_visualizer(meta)
        score_thr = meta.get('score_thr', 0.3) if args.score_thr is None \
            else args.score_thr
        os.makedirs(args.out_dir, exist_ok=True)
        predictions, seconds, skipped = {}, 0., []
        for path in images:
            try:
                predictions[osp.basename(path)], took = predict(
                    runtime, visualizer, path, args.out_dir, score_thr)
                seconds += took
            except Exception as err:
                if args.debug:
                    raise
                skipped.append(path)
                print(f'skipped {path}: {error_message(err)}',
                      file=sys.stderr, flush=True)
        with open(osp.join(args.out_dir, 'predictions.json'), 'w') as f:
            json.dump(predictions, f, indent=1)
        done = len(predictions)
        print(f'{done} images with {args.backend} '
              f'({args.precision}, spectral layers as '
              f'{meta.get("lowering")}): {1e3 * seconds / max(done, 1):.0f} '
              f'ms per image; drawings and predictions.json in '
              f'{args.out_dir}')
        if skipped:
            print(f'error: {len(skipped)} of {len(images)} images could not '
                  'be predicted (see "skipped" above)', file=sys.stderr)
            return 1
    return 0
