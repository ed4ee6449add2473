"""Exporting a model whose backbone has ``valid_region=True``.

In PyTorch the backbone finds each image's region from the padding marks of
its batch, a data-dependent step a graph cannot hold. A graph takes one input
size, the export's ``image_shape`` padded up to the size divisor, so the
region is fixed at export: :func:`fix_valid_region` makes the backbone (with
a leading ``mmspectral.SimpleFPN`` neck) run on that region of its input and
zero-pads its maps to the sizes of the padded input, which is what
``valid_region=True`` computes for an image of ``image_shape`` in any batch.
The graph's output then does not depend on the size-divisor padding or on
what it holds. An image letterboxed into ``image_shape`` (another aspect
ratio) still has its letterbox inside the region, as image content.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmspectral.models.necks import SimpleFPN

__all__ = ['ImageRegionFeatures', 'fix_valid_region']


class ImageRegionFeatures(nn.Module):
    """``backbone`` (then ``neck``) on the top-left ``image_shape`` of the
    input, each output map zero-padded to ``map_shapes``.

    Args:
        backbone (nn.Module): The backbone, with ``valid_region=False``.
        neck (nn.Module, optional): A neck run on the region's maps too.
        image_shape (Sequence[int]): ``(h, w)`` of the region.
        map_shapes (Sequence): Per output, the ``(H, W)`` the padded input
            gives (None for an output that is not a map).
    """

    def __init__(self, backbone: nn.Module, neck: Optional[nn.Module],
                 image_shape: Sequence[int],
                 map_shapes: Sequence[Optional[Tuple[int, int]]]):
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.image_shape = tuple(int(s) for s in image_shape)
        self.map_shapes = list(map_shapes)

    def forward(self, x: torch.Tensor):
        height, width = self.image_shape
        outs, single = _as_list(self._features(x[..., :height, :width]))
        padded = [
            out if shape is None else F.pad(
                out, (0, shape[1] - out.shape[-1], 0,
                      shape[0] - out.shape[-2]))
            for out, shape in zip(outs, self.map_shapes)
        ]
        return padded[0] if single else tuple(padded)

    def _features(self, x: torch.Tensor):
        out = self.backbone(x)
        return out if self.neck is None else self.neck(out)


def _as_list(out) -> Tuple[list, bool]:
    single = not isinstance(out, (list, tuple))
    return ([out] if single else list(out)), single


def _leading_simple_fpn(neck: Optional[nn.Module]
                        ) -> Tuple[Optional[nn.Module], Optional[nn.Module]]:
    """A ``SimpleFPN(valid_region=True)`` at the head of ``neck`` and the
    neck that is left after it (None where there is none)."""
    if isinstance(neck, SimpleFPN) and neck.valid_region:
        return neck, nn.Identity()
    if isinstance(neck, nn.Sequential) and len(neck) and isinstance(
            neck[0], SimpleFPN) and neck[0].valid_region:
        return neck[0], nn.Sequential(*list(neck)[1:])
    return None, neck


def _map_shapes(module: nn.Module, channels: int,
                input_shape: Sequence[int]
                ) -> List[Optional[Tuple[int, int]]]:
    """The spatial size of each 4-D output of ``module`` on a zero batch of
    ``input_shape`` (None for the others)."""
    with torch.no_grad():
        x = torch.zeros(1, channels, *input_shape)
        outs, _ = _as_list(module(x))
    return [tuple(o.shape[-2:]) if o.dim() == 4 else None for o in outs]


def _turn_off_valid_region(model: nn.Module):
    for module in model.modules():
        if getattr(module, 'valid_region', False):
            module.valid_region = False


def fix_valid_region(model: nn.Module, image_shape: Sequence[int],
                     input_shape: Sequence[int],
                     backbone_only: bool = False) -> nn.Module:
    """Fix the ``valid_region`` of ``model``'s backbone to ``image_shape``
    (see the module's docstring), in place. Every ``valid_region`` flag
    of the model is off afterwards (a neck's alone would read the regions
    off its input's zeros, a data-dependent step).

    Args:
        model (nn.Module): The built model (eval mode), with ``.backbone``.
        image_shape (Sequence[int]): The export's image size ``(h, w)``.
        input_shape (Sequence[int]): The graph's input size: ``image_shape``
            padded up to the size divisor.
        backbone_only (bool): Only the backbone is exported (a
            ``SimpleFPN`` neck stays outside). Defaults to False.

    Returns:
        nn.Module: ``model``.
    """
    backbone = model.backbone
    if not getattr(backbone, 'valid_region', False):
        _turn_off_valid_region(model)
        return model
    pyramid, rest = (None, None) if backbone_only else _leading_simple_fpn(
        getattr(model, 'neck', None))
    features = nn.Sequential(backbone) if pyramid is None else \
        nn.Sequential(backbone, pyramid)
    _turn_off_valid_region(model)
    if tuple(image_shape) != tuple(input_shape):
        model.backbone = ImageRegionFeatures(
            backbone, pyramid, image_shape,
            _map_shapes(features, backbone.in_channels, input_shape))
        if pyramid is not None:
            model.neck = rest
    return model
