"""mmspectral.SimpleFPN: the stride-16 map of an isotropic backbone as four
strides, chained before mmdet's FPN."""
import math

import pytest
import torch

from mmspectral.models import SimpleFPN
from backbone_cases import ISOTROPIC, build

SIZES = [(64, 64), (97, 130), (33, 17), (225, 161)]


def isotropic(case):
    """The case's backbone with its default output (the normed last
    block) and the neck for it."""
    backbone = build(case, out_indices=-1).eval()
    return backbone, SimpleFPN(backbone.out_channels[0]).eval()


@pytest.mark.parametrize('case', sorted(ISOTROPIC))
@pytest.mark.parametrize('size', SIZES)
def test_four_strides_at_any_size(case, size):
    backbone, neck = isotropic(case)
    with torch.no_grad():
        outs = neck(backbone(torch.randn(2, 3, *size)))
    grid = [math.ceil(s / 16) for s in size]
    expected = [[4 * g for g in grid], [2 * g for g in grid], grid,
                [math.ceil(s / 32) for s in size]]
    assert [tuple(o.shape) for o in outs] == [
        (2, c, *hw) for c, hw in zip(neck.out_channels, expected)]
    # mmcv's CPU RoIAlign (Mask R-CNN) misreads maps with other strides
    assert all(o.is_contiguous() for o in outs)


@pytest.mark.parametrize('case', sorted(ISOTROPIC))
def test_roi_align_pools_the_simple_pyramid_as_it_holds(case):
    from mmcv.ops import RoIAlign
    backbone, neck = isotropic(case)
    rois = torch.tensor([[0, 3., 5., 60., 40.], [1, 10., 2., 30., 61.]])
    roi_align = RoIAlign(7, spatial_scale=0.25, sampling_ratio=0)
    with torch.no_grad():
        level0 = neck(backbone(torch.randn(2, 3, 64, 96)))[0]
        assert torch.equal(roi_align(level0, rois),
                           roi_align(level0.clone(
                               memory_format=torch.contiguous_format), rois))


def test_only_the_levels_asked_for_are_built():
    neck = SimpleFPN(32, out_indices=(1, 2, 3))
    assert neck.out_channels == [16, 32, 32]
    assert sorted(neck.levels) == ['1', '2', '3']
    outs = neck((torch.randn(1, 32, 5, 7), ))
    assert [o.shape[-2:] for o in outs] == [(10, 14), (5, 7), (3, 4)]
    with pytest.raises(ValueError, match='levels from 0..3'):
        SimpleFPN(32, out_indices=(4, ))


def test_one_map_in():
    neck = SimpleFPN(32)
    with pytest.raises(ValueError, match='one stride-16 map, got 2'):
        neck((torch.randn(1, 32, 4, 4), torch.randn(1, 32, 4, 4)))
    with pytest.raises(ValueError, match=r'\(B, 32, H, W\)'):
        neck(torch.randn(1, 16, 4, 4))


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_a_list_of_necks_builds_as_a_chain(scope):
    """mmdet's and mmseg's detectors build ``neck=[...]`` with their
    registry, which makes an ``nn.Sequential`` of the two."""
    import importlib

    from mmengine.registry import DefaultScope

    import mmspectral  # noqa: F401 (registers the neck)
    registry = importlib.import_module(f'{scope}.registry').MODELS
    cfg = [dict(type='mmspectral.SimpleFPN', in_channels=32),
           dict(type='FPN', in_channels=[8, 16, 32, 32], out_channels=24,
                num_outs=5)]
    with DefaultScope.overwrite_default_scope(scope):
        neck = registry.build(cfg)
    outs = neck((torch.randn(1, 32, 6, 8), ))
    assert [tuple(o.shape) for o in outs] == [
        (1, 24, 24, 32), (1, 24, 12, 16), (1, 24, 6, 8), (1, 24, 3, 4),
        (1, 24, 2, 2)]
