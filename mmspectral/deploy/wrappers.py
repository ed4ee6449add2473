"""The exported graphs of the supported models.

Each wrapper is an ``nn.Module`` whose ``forward`` takes the preprocessed
batch (what the model's ``data_preprocessor`` gives: normalised, in the
config's channel order, zero-padded) and returns tensors only:

============  ==========================  ================================
task          inputs                      outputs
============  ==========================  ================================
backbone      ``input``                   ``out0`` .. ``outN`` (features)
classifier    ``input``                   ``logits`` ``(B, classes)``
segmentor     ``input``                   ``seg_logits`` ``(B, C, H, W)``
retinanet     ``input``, ``img_shape``    ``dets`` ``(B, K, 5)``,
                                          ``labels`` ``(B, K)``
mask_rcnn     ``input``, ``img_shape``    ``dets``, ``labels``,
                                          ``masks`` ``(B, K, 28, 28)``
============  ==========================  ================================

``img_shape`` is ``(B, 2)``: the valid height and width of each padded
image, where mmdet clamps boxes. ``dets`` rows are ``x1, y1, x2, y2,
score`` in input pixels, best first; rows past the real detections have a
score of 0. ``masks`` are each detection's mask probabilities on its box
(mmdet's mask head output for its label, before pasting).
"""
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .detection import (DROPPED, check_delta_coder, decode_deltas, drop_small,
                        extract_rois, gather_rows, nms_keep, top_kept)

TASKS = ('backbone', 'classifier', 'segmentor', 'retinanet', 'mask_rcnn')


class BackboneGraph(nn.Module):
    """The backbone's feature maps as a tuple."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        out = self.backbone(x)
        return tuple(out) if isinstance(out, (list, tuple)) else (out, )


class ClassifierGraph(nn.Module):
    """An mmpretrain ``ImageClassifier``: the head's logits."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x, mode='tensor')


class SegmentorGraph(nn.Module):
    """An mmseg ``EncoderDecoder`` in whole-image mode: the decode head's
    logits resized to the input, as mmseg's ``predict`` does before
    cropping the padding."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        logits = self.model.decode_head(self.model.extract_feat(x))
        return F.interpolate(
            logits, size=x.shape[2:], mode='bilinear',
            align_corners=self.model.decode_head.align_corners)


def _level_outputs(score: Tensor, delta: Tensor, channels: int):
    """A head level's ``(B, A*ch, h, w)`` maps as ``(B, h*w*A, ch)`` rows in
    the order of mmdet's priors."""
    batch = score.shape[0]
    score = score.permute(0, 2, 3, 1).reshape(batch, -1, channels)
    delta = delta.permute(0, 2, 3, 1).reshape(batch, -1, 4)
    return score, delta


class RetinaNetGraph(nn.Module):
    """A single-stage detector with an anchor head (RetinaNet and kin:
    sigmoid classification, delta box coder) and mmdet's post-processing:
    per level the ``nms_pre`` best (anchor, class) pairs, decoding,
    ``min_bbox_size``, then per-class NMS and the ``max_per_img`` best.

    Args:
        model (nn.Module): The mmdet detector.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        head = model.bbox_head
        if not getattr(head, 'use_sigmoid_cls', False) or not hasattr(
                head, 'prior_generator'):
            raise NotImplementedError(
                f'{type(head).__name__}: only anchor heads with sigmoid '
                'classification (RetinaNet-like) are exported')
        check_delta_coder(head.bbox_coder, type(head).__name__)
        self.model = model
        self.cfg = head.test_cfg
        self.priors = _Priors(head.prior_generator)

    def forward(self, x: Tensor, img_shape: Tensor):
        head, cfg = self.model.bbox_head, self.cfg
        scores, deltas = head(self.model.extract_feat(x))
        classes = head.cls_out_channels
        nms_pre = cfg.get('nms_pre', -1)
        boxes, best, labels = [], [], []
        for score, delta, priors in zip(scores, deltas, self.priors(scores)):
            score, delta = _level_outputs(score, delta, classes)
            flat = score.sigmoid().reshape(score.shape[0], -1)
            k = flat.shape[1] if not 0 < nms_pre < flat.shape[1] else nms_pre
            top, index = flat.topk(k, dim=1)
            anchor = torch.div(index, classes, rounding_mode='floor')
            boxes.append(
                decode_deltas(priors[anchor], gather_rows(delta, anchor),
                              head.bbox_coder, img_shape))
            best.append(top)
            labels.append(index % classes)
        boxes, best = torch.cat(boxes, 1), torch.cat(best, 1)
        labels = torch.cat(labels, 1)
        best = drop_small(boxes, best, cfg.get('min_bbox_size', -1))
        per_class = torch.arange(classes, device=x.device)[None, :, None]
        class_scores = torch.where(labels[:, None] == per_class,
                                   best[:, None], DROPPED)
        keep = nms_keep(boxes, class_scores, cfg.nms.iou_threshold,
                        cfg.get('score_thr', 0.), cfg.max_per_img)
        top, index = top_kept(best, keep, cfg.max_per_img)
        dets = torch.cat([gather_rows(boxes, index), top[..., None]], -1)
        return dets, gather_rows(labels, index)


class _Priors:
    """A head's anchors per level for the feature sizes it meets, made once
    (in the eager forward before export, so they enter the graph as
    constants)."""

    def __init__(self, generator):
        self.generator = generator
        self._cache = {}

    def __call__(self, maps):
        sizes = tuple(tuple(int(s) for s in m.shape[-2:]) for m in maps)
        if sizes not in self._cache:
            self._cache[sizes] = self.generator.grid_priors(
                sizes, device=maps[0].device)
        return self._cache[sizes]


class MaskRCNNGraph(nn.Module):
    """A two-stage detector (Faster / Mask R-CNN: RPN, a standard RoI head
    with a shared-FC box head and optionally an FCN mask head) and mmdet's
    post-processing: RPN proposals per level, per-level NMS and the
    ``max_per_img`` best; box head scores and class-specific boxes,
    per-class NMS and the ``max_per_img`` best; the mask head on those.

    Args:
        model (nn.Module): The mmdet detector.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        roi_head = model.roi_head
        if type(roi_head).__name__ != 'StandardRoIHead':
            raise NotImplementedError(
                f'{type(roi_head).__name__}: only StandardRoIHead (Faster / '
                'Mask R-CNN) two-stage detectors are exported')
        check_delta_coder(model.rpn_head.bbox_coder, 'RPN head')
        check_delta_coder(roi_head.bbox_head.bbox_coder, 'box head')
        self.model = model
        self.priors = _Priors(model.rpn_head.prior_generator)

    def proposals(self, feats, img_shape: Tensor):
        """The RPN's ``(B, P, 4)`` proposals and which are real."""
        head = self.model.rpn_head
        cfg = self.model.test_cfg.rpn
        scores, deltas = head(feats)
        boxes, best, levels = [], [], []
        for level, (score, delta, priors) in enumerate(
                zip(scores, deltas, self.priors(scores))):
            score, delta = _level_outputs(score, delta, 1)
            flat = score.sigmoid().reshape(score.shape[0], -1)
            nms_pre = cfg.get('nms_pre', -1)
            k = flat.shape[1] if not 0 < nms_pre < flat.shape[1] else nms_pre
            top, index = flat.topk(k, dim=1)
            boxes.append(
                decode_deltas(priors[index], gather_rows(delta, index),
                              head.bbox_coder, img_shape))
            best.append(top)
            levels.append(torch.full((k, ), level, device=flat.device))
        boxes, best = torch.cat(boxes, 1), torch.cat(best, 1)
        levels = torch.cat(levels)
        best = drop_small(boxes, best, cfg.get('min_bbox_size', -1))
        per_level = torch.arange(len(scores), device=best.device)
        level_scores = torch.where(
            levels[None, None, :] == per_level[None, :, None], best[:, None],
            DROPPED)
        # sigmoid scores are > 0, dropped ones -1: any threshold between
        keep = nms_keep(boxes, level_scores, cfg.nms.iou_threshold, -0.5,
                        cfg.max_per_img)
        top, index = top_kept(best, keep, cfg.max_per_img)
        return gather_rows(boxes, index), top > 0

    def forward(self, x: Tensor, img_shape: Tensor):
        feats = self.model.extract_feat(x)
        proposals, real = self.proposals(feats, img_shape)
        batch, count = proposals.shape[:2]
        rois = proposals.reshape(-1, 4)
        image_of = torch.arange(batch, device=x.device).repeat_interleave(
            count)
        dets, labels = self.boxes(feats, rois, image_of, real, img_shape)
        outputs = (dets, labels)
        if self.model.roi_head.with_mask:
            outputs += (self.masks(feats, dets, labels), )
        return outputs

    def boxes(self, feats, rois, image_of, real, img_shape):
        """Box head: ``(B, K, 5)`` detections and their labels."""
        roi_head = self.model.roi_head
        head, cfg = roi_head.bbox_head, self.model.test_cfg.rcnn
        batch, count = real.shape
        pooled = extract_rois(roi_head.bbox_roi_extractor,
                              feats[:roi_head.bbox_roi_extractor.num_inputs],
                              rois, image_of)
        cls_score, bbox_pred = head(pooled)
        classes = head.num_classes
        scores = F.softmax(cls_score, dim=-1)[:, :classes]
        scores = torch.where(real.reshape(-1, 1), scores, DROPPED)
        deltas = bbox_pred.reshape(batch, count, -1, 4)
        boxes = decode_deltas(rois.reshape(batch, count, 1, 4), deltas,
                              head.bbox_coder, img_shape)
        boxes = boxes.expand(batch, count, classes, 4)
        # one NMS group per image and class
        boxes = boxes.permute(0, 2, 1, 3).reshape(batch * classes, count, 4)
        scores = scores.reshape(batch, count, classes).permute(0, 2, 1)
        keep = nms_keep(boxes, scores.reshape(batch * classes, 1, count),
                        cfg.nms.iou_threshold, cfg.score_thr,
                        cfg.max_per_img)
        top, index = top_kept(
            scores.reshape(batch, -1), keep.reshape(batch, -1),
            cfg.max_per_img)
        chosen = gather_rows(boxes.reshape(batch, classes * count, 4), index)
        labels = torch.div(index, count, rounding_mode='floor')
        return torch.cat([chosen, top[..., None]], -1), labels

    def masks(self, feats, dets: Tensor, labels: Tensor) -> Tensor:
        """Mask head: each detection's ``(28, 28)`` probabilities."""
        roi_head = self.model.roi_head
        batch, count = labels.shape
        rois = dets[..., :4].reshape(-1, 4)
        image_of = torch.arange(batch, device=dets.device).repeat_interleave(
            count)
        pooled = extract_rois(roi_head.mask_roi_extractor,
                              feats[:roi_head.mask_roi_extractor.num_inputs],
                              rois, image_of)
        logits = roi_head.mask_head(pooled)
        if not roi_head.mask_head.class_agnostic:
            index = labels.reshape(-1, 1, 1, 1).expand(
                -1, 1, *logits.shape[2:])
            logits = logits.gather(1, index)
        return logits.sigmoid().reshape(batch, count, *logits.shape[2:])
