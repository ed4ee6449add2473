"""Detection post-processing as a graph of standard ONNX operators.

mmdet's heads post-process in Python, image by image, with shapes that
depend on the data. These functions compute the same results batched, with
fixed shapes wherever possible: top-k candidates per level, box decoding
clamped to each image's valid area (a graph input), ONNX
``NonMaxSuppression`` per class and ``RoiAlign`` per pyramid level. Every
kept set is turned back into a fixed-size, score-sorted top-k, so the
outputs have a fixed size too: entries past the real detections carry a
score of 0 and are to be dropped (:func:`filler_free`).
"""
import math
from typing import Sequence, Tuple

import torch
from torch import Tensor

from .onnx_ops import nms, roi_align

#: The score given to candidates that must never be kept.
DROPPED = -1.0


def decode_deltas(priors: Tensor, deltas: Tensor, coder,
                  img_shape: Tensor) -> Tensor:
    """mmdet's ``DeltaXYWHBBoxCoder.decode`` (``delta2bbox``), batched.

    Args:
        priors (Tensor): ``(..., 4)`` anchors or RoIs, broadcastable to
            ``deltas``.
        deltas (Tensor): ``(B, ..., 4)`` regression outputs.
        coder: The head's ``bbox_coder`` (means, stds, ``clip_border``).
        img_shape (Tensor): ``(B, 2)`` valid height and width of each image,
            the box clamp when the coder clips.

    Returns:
        Tensor: ``(B, ..., 4)`` boxes ``x1, y1, x2, y2``.
    """
    means = deltas.new_tensor(coder.means)
    stds = deltas.new_tensor(coder.stds)
    deltas = deltas * stds + means
    dxy, dwh = deltas[..., :2], deltas[..., 2:]
    pxy = (priors[..., :2] + priors[..., 2:]) * 0.5
    pwh = priors[..., 2:] - priors[..., :2]
    max_ratio = abs(math.log(16 / 1000))
    dwh = dwh.clamp(min=-max_ratio, max=max_ratio)
    gxy = pxy + pwh * dxy
    gwh = pwh * dwh.exp()
    boxes = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], dim=-1)
    if not coder.clip_border:
        return boxes
    limit = img_shape.flip(-1).repeat(1, 2).to(boxes.dtype)  # w, h, w, h
    limit = limit.reshape(limit.shape[0], *([1] * (boxes.dim() - 2)), 4)
    return torch.minimum(boxes.clamp(min=0), limit)


def check_delta_coder(coder, where: str):
    """Refuse box coders other than the delta coder this module mirrors."""
    name = type(coder).__name__
    if name != 'DeltaXYWHBBoxCoder' or getattr(coder, 'add_ctr_clamp',
                                               False):
        raise NotImplementedError(
            f'{where}: only DeltaXYWHBBoxCoder without add_ctr_clamp is '
            f'exported, got {name}')


def drop_small(boxes: Tensor, scores: Tensor, min_size: float) -> Tensor:
    """``scores`` with boxes not wider and higher than ``min_size`` set to
    :data:`DROPPED` (mmdet's ``min_bbox_size`` filter; off when negative).
    """
    if min_size < 0:
        return scores
    wh = boxes[..., 2:] - boxes[..., :2]
    valid = (wh[..., 0] > min_size) & (wh[..., 1] > min_size)
    return torch.where(valid, scores, torch.full_like(scores, DROPPED))


def nms_keep(boxes: Tensor, scores: Tensor, iou_threshold: float,
             score_threshold: float, max_per_class: int) -> Tensor:
    """Which boxes survive per-class NMS.

    Args:
        boxes (Tensor): ``(G, M, 4)``.
        scores (Tensor): ``(G, C, M)``; a box takes part in class ``c``
            with its score there (:data:`DROPPED` keeps it out).

    Returns:
        Tensor: ``(G, M)`` float, 1 where the box is kept in some class.
    """
    selected = nms(boxes, scores, max_per_class, iou_threshold,
                   score_threshold)
    keep = boxes.new_zeros(boxes.shape[:2])
    return keep.index_put((selected[:, 0], selected[:, 2]),
                          keep.new_ones(selected.shape[0]))


def top_kept(scores: Tensor, keep: Tensor, k: int) -> Tuple[Tensor, Tensor]:
    """The best ``k`` kept entries of ``(B, N)`` scores, best first: their
    scores (0 for filler entries past the kept ones) and indices."""
    masked = torch.where(keep > 0, scores, torch.full_like(scores, DROPPED))
    values, index = masked.topk(min(k, masked.shape[1]), dim=1)
    return values.clamp(min=0), index


def gather_rows(x: Tensor, index: Tensor) -> Tensor:
    """``x[b, index[b, j]]`` for ``(B, N, ...)`` ``x`` and ``(B, K)``
    ``index``."""
    shape = index.shape + x.shape[2:]
    index = index.reshape(*index.shape, *([1] * (x.dim() - 2)))
    return x.gather(1, index.expand(shape))


def extract_rois(extractor, feats: Sequence[Tensor], rois: Tensor,
                 batch_indices: Tensor) -> Tensor:
    """mmdet's ``SingleRoIExtractor`` on ``(K, 4)`` RoIs: each RoI pooled
    from the pyramid level its scale maps to (RoiAlign on every level, the
    right one selected)."""
    layers = extractor.roi_layers
    num_levels = len(feats) if len(feats) < len(layers) else len(layers)
    for layer in layers:
        if not getattr(layer, 'aligned', True) or getattr(
                layer, 'pool_mode', 'avg') != 'avg':
            raise NotImplementedError(
                'only RoIAlign with aligned=True and avg pooling is exported')
    side = layers[0].output_size
    side = side[0] if isinstance(side, tuple) else side
    scale = torch.sqrt((rois[:, 2] - rois[:, 0]) * (rois[:, 3] - rois[:, 1]))
    level = torch.floor(torch.log2(scale / extractor.finest_scale + 1e-6))
    level = level.clamp(min=0, max=num_levels - 1)
    out = None
    for i in range(num_levels):
        layer = layers[i]
        pooled = roi_align(feats[i], rois, batch_indices, side,
                           float(layer.spatial_scale),
                           int(layer.sampling_ratio))
        pooled = pooled * (level == i).to(pooled.dtype)[:, None, None, None]
        out = pooled if out is None else out + pooled
    return out


def filler_free(dets, labels, *others):
    """One image's outputs without the filler entries (score 0)."""
    keep = dets[:, 4] > 0
    return (dets[keep], labels[keep]) + tuple(o[keep] for o in others)
