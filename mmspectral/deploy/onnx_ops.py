"""PyTorch operators that export as one standard ONNX operator each.

``torch.onnx.export(..., dynamo=True)`` translates these through
:func:`translation_table` (its ``custom_translation_table``); in eager mode
they compute the same thing with torch, so a model using them runs and can
be compared before export:

* :func:`dft`: ONNX ``DFT`` (opset 17) of a real-stored complex tensor;
* :func:`nms`: ONNX ``NonMaxSuppression`` (per batch and class);
* :func:`roi_align`: ONNX ``RoiAlign`` (opset 16, ``avg``), mmcv's
  ``RoIAlign`` with ``aligned=True`` being ``half_pixel``.
"""
import functools

import torch
from torch import Tensor

__all__ = ['dft', 'nms', 'roi_align', 'translation_table', 'OPSETS']

#: The opset of the exported graphs per lowering: 20 has GELU as one
#: operator (18 spells it with Erf); the DFT lowering stays at 18, whose
#: DFT takes the axis as an attribute, as OpenVINO's importer expects (it
#: ignores DFT-20's axis input). NonMaxSuppression and RoiAlign are the same
#: in both.
OPSETS = {'matmul': 20, 'dft': 18}


@torch.library.custom_op('mmspectral::dft', mutates_args=())
def dft(x: Tensor, axis: int, inverse: bool) -> Tensor:
    """Complex DFT of ``x`` (``(..., 2)``: real and imaginary parts) along
    ``axis`` (a non-negative axis other than the last), as ONNX defines it:
    unnormalised forward, ``1/N`` inverse."""
    signal = torch.view_as_complex(x.float().contiguous())
    out = torch.fft.ifft(signal, dim=axis) if inverse else torch.fft.fft(
        signal, dim=axis)
    return torch.view_as_real(out).contiguous()


@dft.register_fake
def _dft_fake(x, axis, inverse):
    return torch.empty_like(x, dtype=torch.float32)


@torch.library.custom_op('mmspectral::nms', mutates_args=())
def nms(boxes: Tensor, scores: Tensor, max_per_class: int,
        iou_threshold: float, score_threshold: float) -> Tensor:
    """Indices ``(K, 3)`` ``[batch, class, box]`` that survive non-maximum
    suppression, per batch and class, best first within each.

    Args:
        boxes (Tensor): ``(B, M, 4)`` corners ``x1, y1, x2, y2``.
        scores (Tensor): ``(B, C, M)``.
        max_per_class (int): Boxes kept per batch and class at most.
        iou_threshold (float): A box is dropped if its IoU with a kept one
            is above this.
        score_threshold (float): Boxes with a score not above this are
            dropped first.
    """
    from torchvision.ops import nms as tv_nms
    out = []
    for b in range(scores.shape[0]):
        for c in range(scores.shape[1]):
            candidates = torch.nonzero(
                scores[b, c] > score_threshold).flatten()
            keep = tv_nms(boxes[b, candidates].float(),
                          scores[b, c, candidates].float(),
                          iou_threshold)[:max_per_class]
            kept = candidates[keep]
            out.append(
                torch.stack([
                    torch.full_like(kept, b),
                    torch.full_like(kept, c), kept
                ], dim=1))
    return torch.cat(out).long() if out else boxes.new_zeros(
        (0, 3), dtype=torch.long)


@nms.register_fake
def _nms_fake(boxes, scores, max_per_class, iou_threshold, score_threshold):
    count = torch.library.get_ctx().new_dynamic_size()
    return boxes.new_empty((count, 3), dtype=torch.long)


@torch.library.custom_op('mmspectral::roi_align', mutates_args=())
def roi_align(features: Tensor, rois: Tensor, batch_indices: Tensor,
              output_size: int, spatial_scale: float,
              sampling_ratio: int) -> Tensor:
    """Average RoI Align with half-pixel offsets (mmcv ``aligned=True``).

    Args:
        features (Tensor): ``(B, C, H, W)``.
        rois (Tensor): ``(K, 4)`` corners in input-image pixels.
        batch_indices (Tensor): ``(K,)`` the image of each RoI.
        output_size (int): Side of the square output.
        spatial_scale (float): Feature pixels per image pixel.
        sampling_ratio (int): Samples per output bin side; 0: adaptive.

    Returns:
        Tensor: ``(K, C, output_size, output_size)``.
    """
    from torchvision.ops import roi_align as tv_roi_align
    boxes = torch.cat([batch_indices[:, None].to(rois.dtype), rois], dim=1)
    return tv_roi_align(features, boxes, output_size, spatial_scale,
                        sampling_ratio, aligned=True)


@roi_align.register_fake
def _roi_align_fake(features, rois, batch_indices, output_size,
                    spatial_scale, sampling_ratio):
    return features.new_empty(
        (rois.shape[0], features.shape[1], output_size, output_size))


@functools.lru_cache(maxsize=None)
def translation_table() -> dict:
    """The ``custom_translation_table`` of ``torch.onnx.export`` for the
    operators above (onnxscript is only needed when exporting)."""
    from onnxscript import opset18 as op  # operators unchanged up to 20

    def dft_onnx(x, axis: int, inverse: bool):
        return op.DFT(x, axis=axis, inverse=int(inverse), onesided=0)

    def nms_onnx(boxes, scores, max_per_class: int, iou_threshold: float,
                 score_threshold: float):
        return op.NonMaxSuppression(
            boxes, scores, op.Constant(value_ints=[max_per_class]),
            op.Constant(value_floats=[iou_threshold]),
            op.Constant(value_floats=[score_threshold]),
            center_point_box=0)

    def roi_align_onnx(features, rois, batch_indices, output_size: int,
                       spatial_scale: float, sampling_ratio: int):
        return op.RoiAlign(
            features, rois, batch_indices,
            coordinate_transformation_mode='half_pixel', mode='avg',
            output_height=output_size, output_width=output_size,
            sampling_ratio=sampling_ratio, spatial_scale=spatial_scale)

    return {
        torch.ops.mmspectral.dft.default: dft_onnx,
        torch.ops.mmspectral.nms.default: nms_onnx,
        torch.ops.mmspectral.roi_align.default: roi_align_onnx,
    }
