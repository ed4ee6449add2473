"""Exported model against the PyTorch model it came from.

:func:`reference` runs the PyTorch model the way its library predicts
(mmdet's and mmseg's own ``predict`` with their post-processing, the
classifier's logits, the backbone's features) on one preprocessed batch;
:func:`deployed` turns the exported graph's outputs on the same batch into
the same structures (boxes rescaled, masks pasted, logits cropped), and
:func:`compare` gives the figures of the parity table: the largest absolute
difference of features and logits, the share of argmax labels that agree,
and for detectors how many detections match (same label, box IoU above
:data:`BOX_IOU`), their smallest box and mask IoU, the mask IoU pooled
over every matched detection (intersections over unions, summed) and the
largest score difference.
"""
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

__all__ = ['BOX_IOU', 'make_decisive', 'reference', 'deployed', 'compare']

#: Box IoU above which two detections of the same label match.
BOX_IOU = 0.99


def photo_like_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A photo-like ``(height, width, 3)`` BGR ``uint8`` image: a smooth
    background with texture, and filled shapes of many sizes and colours
    (edges, flat regions and fine detail, unlike noise)."""
    import cv2
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(40, 215, (4, 6, 3)).astype(np.float32)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    texture = cv2.GaussianBlur(
        rng.normal(0, 18, (height, width, 3)).astype(np.float32), (0, 0), 2)
    image = image + texture
    for _ in range(12):
        color = [int(v) for v in rng.integers(0, 256, 3)]
        size = int(rng.uniform(0.04, 0.25) * min(height, width))
        cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
        kind = rng.integers(3)
        if kind == 0:
            cv2.circle(image, (cx, cy), size, color, -1)
        elif kind == 1:
            cv2.rectangle(image, (cx - size, cy - size // 2),
                          (cx + size, cy + size // 2), color, -1)
        else:
            points = np.array([[cx, cy - size], [cx - size, cy + size],
                               [cx + size, cy + size]], np.int32)
            cv2.fillPoly(image, [points], color)
    return np.clip(image, 0, 255).astype(np.uint8)


def _logit_layers(model, task: str) -> List[torch.nn.Module]:
    """The last classification layers of a detector, and its mask layer
    last."""
    if task == 'retinanet':
        return [model.bbox_head.retina_cls]
    if task == 'mask_rcnn':
        roi_head = model.roi_head
        layers = [model.rpn_head.rpn_cls, roi_head.bbox_head.fc_cls]
        if roi_head.with_mask:
            layers.append(roi_head.mask_head.conv_logits)
        return layers
    return []


def make_decisive(model, task: str, inputs: Sequence[torch.Tensor],
                  spread: float = 2.0, mask_spread: float = 6.0
                  ) -> List[str]:
    """Give a randomly initialised detector the score spread of a trained
    one, so that parity is not decided by float rounding.

    An untrained head scores every anchor, proposal and mask pixel almost
    alike (its logits are its bias plus noise ~0.01), so which boxes win a
    top-k or NMS and which pixels pass the mask threshold depends on the
    last bits of the arithmetic. Each last classification layer is
    rescaled here so that its logits have a root mean square of ``spread``
    on ``inputs`` over all the maps it scores, and the mask layer to
    ``mask_spread`` (a trained mask head is confident but at the mask's
    edge); biases are zeroed, the rest of the network is untouched. Only for
    models without trained weights.

    Returns:
        list[str]: The names of the rescaled layers.
    """
    layers = _logit_layers(model, task)
    names = {id(m): n for n, m in model.named_modules()}
    stats = {}  # sum of squares and count of the logits of every call

    def hook(module, args, output):
        total, count = stats.get(id(module), (0., 0))
        stats[id(module)] = (total + float(output.double().square().sum()),
                             count + output.numel())

    with torch.no_grad():
        for layer in layers:
            if layer.bias is not None:
                layer.bias.zero_()
        handles = [layer.register_forward_hook(hook) for layer in layers]
        try:
            reference(model, task, inputs)
        finally:
            for handle in handles:
                handle.remove()
        for layer in layers:
            total, count = stats.get(id(layer), (0., 0))
            target = mask_spread if 'conv_logits' in names[id(layer)] else \
                spread
            if total > 0:
                layer.weight.mul_(target / (total / count)**0.5)
    return [names[id(layer)] for layer in layers]


def _image_shapes(inputs) -> List[tuple]:
    """Each image's valid size, from a detector's ``img_shape`` input."""
    return [tuple(int(v) for v in row) for row in inputs[1]]


def _det_samples(input_shape, image_shapes):
    from mmdet.structures import DetDataSample
    return [
        DetDataSample(metainfo=dict(
            img_shape=shape, ori_shape=shape, pad_shape=tuple(input_shape),
            batch_input_shape=tuple(input_shape), scale_factor=(1., 1.)))
        for shape in image_shapes
    ]


def _seg_samples(input_shape, batch):
    from mmseg.structures import SegDataSample
    meta = dict(img_shape=tuple(input_shape), ori_shape=tuple(input_shape),
                pad_shape=tuple(input_shape), padding_size=[0, 0, 0, 0])
    return [SegDataSample(metainfo=meta) for _ in range(batch)]


def reference(model, task: str, inputs: Sequence[torch.Tensor]):
    """The PyTorch model's results on the preprocessed ``inputs`` (the
    graph's inputs): features, logits, or per image mmdet
    ``InstanceData``."""
    x = inputs[0]
    with torch.no_grad():
        if task == 'backbone':
            out = model.backbone(x)
            out = out if isinstance(out, (list, tuple)) else [out]
            return [o.numpy() for o in out]
        if task == 'classifier':
            return [model(x, mode='tensor').numpy()]
        if task == 'segmentor':
            samples = model.predict(x, _seg_samples(x.shape[2:], len(x)))
            return [np.stack([s.seg_logits.data.numpy() for s in samples])]
        samples = model.predict(
            x, _det_samples(x.shape[2:], _image_shapes(inputs)),
            rescale=True)
        return [s.pred_instances for s in samples]


def deployed(outputs: Sequence[np.ndarray], meta: dict,
             inputs: Sequence[torch.Tensor]):
    """The graph's ``outputs`` on ``inputs`` in the structures of
    :func:`reference`."""
    from .runtime import det_instances
    task = meta['task']
    if task not in ('retinanet', 'mask_rcnn'):
        return list(outputs)
    return [
        det_instances(outputs, meta,
                      dict(ori_shape=shape, img_shape=shape,
                           scale_factor=(1., 1.)), i)
        for i, shape in enumerate(_image_shapes(inputs))
    ]


def _box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    from torchvision.ops import box_iou
    if len(a) == 0 or len(b) == 0:
        return a.new_zeros((len(a), len(b)))
    return box_iou(a.double(), b.double()).float()


def _mask_overlap(a: torch.Tensor, b: torch.Tensor) -> Tuple[int, int]:
    """Pixels of the intersection and of the union of two masks."""
    return (a & b).sum().item(), (a | b).sum().item()


def _iou(intersection: int, union: int) -> float:
    return 1.0 if union == 0 else intersection / union


def compare_detections(ref, dep) -> Dict[str, float]:
    """Match each reference detection of one image to the deployed one of
    the same label with the highest box IoU."""
    iou = _box_iou(ref.bboxes, dep.bboxes)
    if len(ref) and len(dep):
        iou = iou * (ref.labels[:, None] == dep.labels[None]).float()
    figures = dict(ref=len(ref), deployed=len(dep), matched=0,
                   min_box_iou=1.0, max_score_diff=0.0)
    if len(ref) == 0:
        figures['min_box_iou'] = 1.0 if len(dep) == 0 else 0.0
        return figures
    best, which = (iou.max(dim=1) if len(dep) else
                   (torch.zeros(len(ref)), torch.zeros(len(ref)).long()))
    matched = best > BOX_IOU
    # the smallest IoU of the matched ones (an unmatched detection is
    # counted in ``matched``)
    figures.update(matched=int(matched.sum()),
                   min_box_iou=float(best[matched].min()) if matched.any()
                   else 0.0)
    if matched.any():
        diff = (ref.scores[matched] - dep.scores[which[matched]]).abs()
        figures['max_score_diff'] = float(diff.max())
    if 'masks' in ref and 'masks' in dep:
        overlaps = [
            _mask_overlap(ref.masks[i], dep.masks[which[i]])
            for i in torch.nonzero(matched).flatten().tolist()
        ]
        figures['min_mask_iou'] = min(
            (_iou(*o) for o in overlaps), default=1.0)
        # pooled over the masks: a pixel on the 0.5 threshold that flips in
        # a mask of a few pixels does not dominate it
        figures['intersection'] = sum(o[0] for o in overlaps)
        figures['union'] = sum(o[1] for o in overlaps)
    return figures


def compare(task: str, ref: List, dep: List) -> Dict[str, float]:
    """The parity figures of one batch (see the module docstring)."""
    if task in ('retinanet', 'mask_rcnn'):
        per_image = [compare_detections(r, d) for r, d in zip(ref, dep)]
        total = {k: sum(f.get(k, 0) for f in per_image)
                 for k in ('ref', 'deployed', 'matched', 'intersection',
                           'union')}
        if any('min_mask_iou' in f for f in per_image):
            total['mask_iou'] = _iou(total['intersection'], total['union'])
        del total['intersection'], total['union']
        for key, pick in (('min_box_iou', min), ('max_score_diff', max),
                          ('min_mask_iou', min)):
            values = [f[key] for f in per_image if key in f]
            if values:
                total[key] = pick(values)
        return total
    figures = dict(max_abs_diff=max(
        float(np.abs(np.asarray(d, np.float64) - r).max())
        for r, d in zip(ref, dep)))
    figures['max_abs'] = max(float(np.abs(r).max()) for r in ref)
    if task in ('classifier', 'segmentor'):
        agree = (np.asarray(dep[0]).argmax(1) == ref[0].argmax(1)).mean()
        figures['argmax_agreement'] = float(agree)
    return figures
