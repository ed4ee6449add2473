"""Running an exported model with ONNX Runtime or OpenVINO, and turning
images into its inputs and its outputs into mmdet / mmseg / mmpretrain
data samples (which their visualizers draw).

Everything the model needs besides the file is in its ``mmspectral``
metadata (:func:`mmspectral.deploy.export.read_metadata`): the task, the
export size, the normalisation, the class names and the test thresholds.
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    'BACKENDS', 'PRECISIONS', 'Runtime', 'preprocess', 'to_data_sample',
    'det_instances', 'seg_prediction', 'quantize_int8'
]

BACKENDS = ('onnxruntime', 'openvino')
#: What each backend runs: fp32 everywhere, bf16 on OpenVINO (CPUs with
#: bf16 support), int8 with ONNX Runtime (dynamic weight quantisation of
#: the network's own layers, see :func:`quantize_int8`).
PRECISIONS = {'onnxruntime': ('fp32', 'int8'), 'openvino': ('fp32', 'bf16')}


class Runtime:
    """An exported model loaded by one backend.

    Args:
        path (str): The ONNX file.
        backend (str): ``'onnxruntime'`` or ``'openvino'``. Defaults to
            ``'onnxruntime'``.
        threads (int, optional): CPU threads. Defaults to the backend's
            choice.
        precision (str): ``'fp32'`` or ``'bf16'`` (OpenVINO). OpenVINO's own
            default on bf16-capable CPUs is bf16; here it is always explicit.
            Defaults to ``'fp32'``.
        share_cpu (bool): Leave the cores free between runs: ONNX Runtime's
            threads do not spin after a run and OpenVINO does not pin its
            threads to cores, so that other work timed in turn on the same
            cores (another runtime, PyTorch) is not slowed down. Defaults to
            False (each backend's default, best for back-to-back runs).
    """

    def __init__(self, path: str, backend: str = 'onnxruntime',
                 threads: Optional[int] = None, precision: str = 'fp32',
                 share_cpu: bool = False):
        from .export import read_metadata
        if backend not in BACKENDS:
            raise ValueError(f'backend must be one of {BACKENDS}, got '
                             f'{backend!r}')
        if not osp.isfile(path):
            raise FileNotFoundError(f'ONNX model {path!r} not found')
        if precision not in ('fp32', 'bf16', 'int8'):
            raise ValueError(f'unknown precision {precision!r}')
        if precision == 'bf16' and backend != 'openvino':
            raise ValueError('bf16 inference is offered by OpenVINO only')
        self.path, self.backend, self.precision = path, backend, precision
        self.meta = read_metadata(path)
        if backend == 'onnxruntime':
            self._load_onnxruntime(threads, share_cpu)
        else:
            self._load_openvino(threads, precision, share_cpu)

    def _load_onnxruntime(self, threads, share_cpu):
        import onnxruntime as ort
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        if share_cpu:
            options.add_session_config_entry(
                'session.intra_op.allow_spinning', '0')
        self._session = ort.InferenceSession(
            self.path, options, providers=['CPUExecutionProvider'])
        self.input_names = [i.name for i in self._session.get_inputs()]
        self.output_names = [o.name for o in self._session.get_outputs()]

    def _load_openvino(self, threads, precision, share_cpu):
        import openvino as ov
        config = {
            'INFERENCE_PRECISION_HINT': 'f32' if precision != 'bf16' else
            'bf16'
        }
        if threads:
            config['INFERENCE_NUM_THREADS'] = threads
        if share_cpu:
            config['ENABLE_CPU_PINNING'] = False
        compiled = ov.Core().compile_model(self.path, 'CPU', config)
        self._request = compiled.create_infer_request()
        self._outputs = list(compiled.outputs)
        self.input_names = [i.get_any_name() for i in compiled.inputs]
        self.output_names = [o.get_any_name() for o in self._outputs]

    def __call__(self, *inputs: np.ndarray) -> List[np.ndarray]:
        """Run on positional inputs in the graph's input order."""
        if len(inputs) != len(self.input_names):
            raise ValueError(f'{self.path} takes {len(self.input_names)} '
                             f'inputs ({self.input_names}), got '
                             f'{len(inputs)}')
        feed = {n: np.ascontiguousarray(x)
                for n, x in zip(self.input_names, inputs)}
        if self.backend == 'onnxruntime':
            return self._session.run(None, feed)
        result = self._request.infer(feed)
        return [np.array(result[o]) for o in self._outputs]


def quantize_int8(src: str, dst: str, keep_float: Sequence[str] = ()):
    """Dynamic int8 quantisation of ``src`` into ``dst`` with ONNX Runtime:
    the weights of the network's MatMul / Gemm layers become int8, the
    activations are quantised on the fly. The products with the spectral
    layers' constants (DFT matrices, filters, AFNO's block weights: tensors
    the exporter lifts as ``*lifted_tensor*``) stay float, as do the nodes
    named in ``keep_float``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    model = onnx.load(src, load_external_data=False)
    spectral = {
        i.name
        for i in model.graph.initializer if 'lifted_tensor' in i.name
    }
    excluded = [
        n.name for n in model.graph.node
        if n.op_type in ('MatMul', 'Gemm') and spectral.intersection(n.input)
    ] + list(keep_float)
    quantize_dynamic(src, dst, weight_type=QuantType.QInt8,
                     op_types_to_quantize=['MatMul', 'Gemm'],
                     nodes_to_exclude=excluded)


def _resize(image: np.ndarray, size: Tuple[int, int],
            interpolation: str = 'bilinear') -> np.ndarray:
    import cv2
    flags = {'bilinear': cv2.INTER_LINEAR, 'bicubic': cv2.INTER_CUBIC}
    return cv2.resize(image, (size[1], size[0]),
                      interpolation=flags[interpolation])


def preprocess(image: np.ndarray, meta: dict) -> Tuple[List[np.ndarray],
                                                       dict]:
    """One BGR ``uint8`` image (as ``cv2.imread`` gives) as the model's
    inputs, and what maps its outputs back to the image.

    Detectors and segmentors: the image is resized, keeping its aspect
    ratio, to fit the export's ``image_shape``, normalised and zero-padded
    to the graph's ``input_shape`` at the bottom and right (mmdet / mmseg
    pad there too). Classifiers: resized to cover the input, keeping the
    ratio, then centre-cropped.

    Returns:
        tuple: The input arrays and ``dict(ori_shape, img_shape,
        scale_factor)`` (``scale_factor`` as mmdet's ``(w, h)``).
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'expected an (H, W, 3) image, got shape '
                         f'{image.shape}')
    height, width = meta['input_shape']
    target = meta.get('image_shape', meta['input_shape'])
    ori = image.shape[:2]
    if meta['task'] == 'classifier':
        scale = max(height / ori[0], width / ori[1])
        size = (max(height, int(ori[0] * scale + 0.5)),
                max(width, int(ori[1] * scale + 0.5)))
        image = _resize(image, size, 'bicubic')
        top, left = (size[0] - height) // 2, (size[1] - width) // 2
        image = image[top:top + height, left:left + width]
        size = (height, width)
    else:
        scale = min(target[0] / ori[0], target[1] / ori[1])
        size = (min(target[0], int(ori[0] * scale + 0.5)),
                min(target[1], int(ori[1] * scale + 0.5)))
        image = _resize(image, size)
    x = image.astype(np.float32)
    if meta.get('bgr_to_rgb'):
        x = x[..., ::-1]
    x = (x - np.float32(meta['mean'])) / np.float32(meta['std'])
    batch = np.full((1, 3, height, width), meta.get('pad_value', 0.),
                    dtype=np.float32)
    batch[0, :, :size[0], :size[1]] = x.transpose(2, 0, 1)
    info = dict(ori_shape=ori, img_shape=size,
                scale_factor=(size[1] / ori[1], size[0] / ori[0]))
    inputs = [batch]
    if meta['task'] in ('retinanet', 'mask_rcnn'):
        inputs.append(np.array([size], dtype=np.float32))
    return inputs, info


def det_instances(outputs: Sequence[np.ndarray], meta: dict, info: dict,
                  index: int = 0, score_thr: Optional[float] = None):
    """Image ``index`` of a detector's outputs as mmdet ``InstanceData``
    in original-image pixels: boxes divided by the scale factor, masks
    pasted and thresholded as mmdet's mask head does, only detections
    scoring above ``score_thr`` (default: the config's test threshold;
    the filler rows score 0)."""
    import torch
    from mmengine.structures import InstanceData
    thr = meta.get('score_thr', 0.) if score_thr is None else score_thr
    dets = torch.from_numpy(np.asarray(outputs[0][index], np.float32))
    labels = torch.from_numpy(np.asarray(outputs[1][index])).long()
    keep = (dets[:, 4] > thr) & (dets[:, 4] > 0)
    dets, labels = dets[keep], labels[keep]
    scale = dets.new_tensor(info['scale_factor']).repeat(2)
    result = InstanceData()
    result.bboxes = dets[:, :4] / scale
    result.scores = dets[:, 4]
    result.labels = labels
    if len(outputs) > 2:
        masks = torch.from_numpy(np.asarray(outputs[2][index],
                                            np.float32))[keep]
        result.masks = paste_masks(masks, result.bboxes, info['ori_shape'],
                                   meta.get('mask_thr_binary', 0.5))
    return result


def paste_masks(masks, boxes, shape: Tuple[int, int], threshold: float):
    """``(N, h, w)`` mask probabilities on their boxes as ``(N, H, W)``
    boolean image masks, pasted one by one as mmdet's FCN mask head does
    on the CPU."""
    import torch
    from mmdet.models.roi_heads.mask_heads.fcn_mask_head import _do_paste_mask
    out = torch.zeros(len(masks), *shape, dtype=torch.bool)
    for i in range(len(masks)):
        chunk, where = _do_paste_mask(masks[i:i + 1, None], boxes[i:i + 1],
                                      shape[0], shape[1], skip_empty=True)
        out[(slice(i, i + 1), ) + where] = chunk >= threshold
    return out


def seg_prediction(logits: np.ndarray, meta: dict, info: dict,
                   index: int = 0):
    """Image ``index`` of a segmentor's logits as mmseg does after its
    forward: the padding cropped, resized to the original image, argmax.
    Returns ``(logits (C, H, W), labels (H, W))`` torch tensors."""
    import torch
    import torch.nn.functional as F
    height, width = info['img_shape']
    x = torch.from_numpy(np.asarray(logits[index:index + 1], np.float32))
    x = x[:, :, :height, :width]
    if (height, width) != tuple(info['ori_shape']):
        x = F.interpolate(x, size=tuple(info['ori_shape']), mode='bilinear',
                          align_corners=meta.get('align_corners', False))
    return x[0], x[0].argmax(dim=0)


def to_data_sample(outputs: Sequence[np.ndarray], meta: dict, info: dict,
                   index: int = 0, score_thr: Optional[float] = None):
    """Image ``index`` of the outputs as the library's data sample
    (``DetDataSample``, ``SegDataSample`` or mmpretrain ``DataSample``),
    ready for its visualizer."""
    import torch
    task = meta['task']
    if task in ('retinanet', 'mask_rcnn'):
        from mmdet.structures import DetDataSample
        sample = DetDataSample(metainfo=info)
        sample.pred_instances = det_instances(outputs, meta, info, index,
                                              score_thr)
        return sample
    if task == 'segmentor':
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        logits, labels = seg_prediction(outputs[0], meta, info, index)
        sample = SegDataSample(metainfo=info)
        sample.seg_logits = PixelData(data=logits)
        sample.pred_sem_seg = PixelData(data=labels[None])
        return sample
    if task == 'classifier':
        from mmpretrain.structures import DataSample
        logits = torch.from_numpy(np.asarray(outputs[0][index], np.float32))
        score = logits.softmax(-1)
        return DataSample(metainfo=info).set_pred_score(score).set_pred_label(
            score.argmax(-1, keepdim=True))
    raise ValueError(f'no data sample for the task {task!r}')


def dataset_meta(meta: dict) -> Dict:
    """The ``dataset_meta`` of a visualizer from the model's metadata;
    classes without names are called by their index, and get colours of a
    fixed random palette."""
    classes = meta.get('classes') or [
        str(i) for i in range(meta.get('num_classes', 0))
    ]
    palette = meta.get('palette')
    if not palette or len(palette) < len(classes):
        rng = np.random.default_rng(0)
        palette = rng.integers(0, 256, (len(classes), 3)).tolist()
    return dict(classes=tuple(classes),
                palette=[tuple(int(v) for v in p) for p in palette])
