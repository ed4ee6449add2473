"""Batch padding invariance (``valid_region``): an image's outputs over its
own region are those of the image alone, in any batch and with any
``size_divisor``."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F

from mmspectral.models import HorNet, SimpleFPN
from mmspectral.models.backbones.base import PAD_MARK, padding_marks
from mmspectral.models.layers import set_spectral_impl
from backbone_cases import CASES, build

SMALL, LARGE = (45, 61), (90, 77)
# every residual branch at full strength, so that a wrong region shows
HORNET = dict(base_dim=8, depths=[1, 1, 2, 1], orders=[2, 3, 4, 5],
              layer_scale_init_value=1.)
# every family
VALID_CASES = {
    'gfnet-pyramid': {},
    'gfnet': {},
    'afno': {},
    'hornet-gf': dict(arch=dict(HORNET, global_filter_stages=(2, 3))),
    'hornet-7x7': dict(arch=dict(HORNET, global_filter_stages=())),
    'spectformer': {},
    'spectformer-h': {},
    'afno-mit': {},
}


def backbone_of(case: str, **kwargs):
    if case.startswith('hornet'):
        model = HorNet(out_indices=(0, 1, 2, 3), gap_before_final_norm=False,
                       **VALID_CASES[case], **kwargs)
        model.init_weights()
    else:
        model = build(case, **kwargs)
    return set_spectral_impl(model.eval(), 'fft')


def images(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(3, *size, generator=gen) for size in (SMALL, LARGE)]


def batch_of(imgs, pad_value=float('nan'), divisor: int = 1):
    """Images padded at the bottom/right to the largest (rounded up to
    ``divisor``) with ``pad_value``, as the data preprocessors pad."""
    height = math.ceil(max(i.shape[1] for i in imgs) / divisor) * divisor
    width = math.ceil(max(i.shape[2] for i in imgs) / divisor) * divisor
    return torch.stack([
        F.pad(i, (0, width - i.shape[2], 0, height - i.shape[1]),
              value=pad_value) for i in imgs
    ])


def relative_difference(a, b) -> float:
    return float((a - b).norm() / b.norm())


def assert_same_over_image(batch_outs, alone_outs, index=0):
    """The batch's outputs of image ``index`` equal the image's alone over
    its region (1e-5 relative) and are zero beyond it."""
    for level, (out, ref) in enumerate(zip(batch_outs, alone_outs)):
        h, w = ref.shape[-2:]
        region = out[index, :, :h, :w]
        assert relative_difference(region, ref[0]) < 1e-5, level
        beyond = out[index].clone()
        beyond[:, :h, :w] = 0
        assert not beyond.any(), level


@pytest.mark.parametrize('case', sorted(VALID_CASES))
@pytest.mark.parametrize('pad_value', [float('nan'), PAD_MARK])
def test_an_image_gives_the_same_outputs_alone_and_in_a_batch(
        case, pad_value):
    backbone = backbone_of(case, valid_region=True)
    small, large = images()
    with torch.no_grad():
        alone = backbone(small[None])
        batched = backbone(batch_of([small, large], pad_value))
        divided = backbone(batch_of([small], pad_value, divisor=32))
        larger_alone = backbone(large[None])
    assert_same_over_image(batched, alone)
    assert_same_over_image(divided, alone)
    assert_same_over_image(batched, larger_alone, index=1)


def test_without_valid_region_the_batch_changes_an_image():
    """Today's behaviour, which valid_region fixes: a global filter mixes
    the zero padding into the whole image."""
    backbone = backbone_of('gfnet-pyramid')
    small, large = images()
    with torch.no_grad():
        alone = backbone(small[None])
        batched = backbone(batch_of([small, large], 0.))
    for out, ref in zip(batched, alone):
        h, w = ref.shape[-2:]
        # not only near the padding: the left/top half changes too
        assert relative_difference(out[0, :, :h // 2 + 1, :w // 2 + 1],
                                   ref[0, :, :h // 2 + 1, :w // 2 + 1]) > 1e-3


@pytest.mark.parametrize('case', ['gfnet-pyramid', 'hornet-gf', 'afno'])
def test_valid_region_keeps_an_unpadded_batch(case):
    """Nothing changes for images that fill the batch and need no inner
    padding (a multiple of 32)."""
    plain = backbone_of(case)
    valid = copy.deepcopy(plain)
    valid.valid_region = True
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        for a, b in zip(plain(x), valid(x)):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_padding_marks_without_valid_region_name_the_config_field():
    backbone = backbone_of('gfnet-pyramid')
    with pytest.raises(ValueError, match=r'model\.backbone\.valid_region'):
        backbone(batch_of(images(), PAD_MARK))
    with pytest.raises(ValueError, match='valid_region=True'):
        backbone(batch_of(images(), float('nan')))


@pytest.mark.parametrize('where', ['inside', 'top', 'one channel'])
def test_marks_outside_a_bottom_right_padding_are_refused(where):
    backbone = backbone_of('gfnet-pyramid', valid_region=True)
    x = batch_of(images())
    if where == 'inside':
        x[0, :, 10, 10] = float('nan')
    elif where == 'top':
        x[1, :, 0, :] = float('nan')
    else:
        x[0, 1, 50:, :] = 0.
    with pytest.raises(ValueError, match='bottom/right padding'):
        backbone(x)


def test_an_image_that_is_all_padding_is_refused():
    backbone = backbone_of('gfnet-pyramid', valid_region=True)
    x = batch_of(images())
    x[0] = float('nan')
    with pytest.raises(ValueError, match='image 0 of the batch is all'):
        backbone(x)


def test_the_class_token_output_refuses_valid_region():
    cls, arch = CASES['spectformer-h']
    with pytest.raises(ValueError, match="out_type='featmap' only"):
        cls(arch, out_type='cls_token', valid_region=True)


def test_hornet_pools_the_valid_region_for_classification():
    backbone = HorNet(dict(HORNET, global_filter_stages=(2, 3)),
                      valid_region=True).eval()
    small, large = images()
    with torch.no_grad():
        alone = backbone(small[None])[0]
        batched = backbone(batch_of([small, large]))[0]
    assert relative_difference(batched[0], alone[0]) < 1e-5


@pytest.mark.parametrize('case', ['gfnet', 'afno'])
def test_simple_fpn_keeps_the_invariance(case):
    backbone = backbone_of(case, out_indices=-1, valid_region=True)
    neck = SimpleFPN(backbone.out_channels[0], valid_region=True).eval()
    small, large = images()
    with torch.no_grad():
        alone = neck(backbone(small[None]))
        batched = neck(backbone(batch_of([small, large])))
    assert_same_over_image(batched, alone)


# -- through the shipped detectors and segmentors ---------------------------
# The necks and heads of mmdet / mmseg are convolutional: within a band
# along the image's bottom/right border (their receptive field) they see
# the padding, as with a CNN backbone. Away from it an image's outputs are
# the same alone and in any batch with valid_region, and differ without.

TINY = {
    'retinanet': 'configs/tiny/retinanet_gfnet-h-ti_fpn_200i_tiny-coco.py',
    'mask-rcnn': 'configs/tiny/mask-rcnn_gfnet-h-ti_fpn_60i_tiny-coco.py',
    'segformer': 'configs/tiny/segformer_gfnet-h-ti_200i_tiny-cityscapes.py',
}


def tiny_model(name: str):
    """The tiny config's model with random weights, biases as in a trained
    model (not zero), in eval mode, keeping every detection."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, DefaultScope
    cfg = Config.fromfile(TINY[name])
    if name == 'retinanet':  # every prediction kept
        cfg.model.test_cfg.score_thr = 0.
    elif name == 'mask-rcnn':
        cfg.model.test_cfg.rcnn.score_thr = 0.
    scope = 'mmseg' if name == 'segformer' else 'mmdet'
    with DefaultScope.overwrite_default_scope(scope):
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        model.init_weights()
        with torch.no_grad():
            for key, param in model.named_parameters():
                if key.endswith('bias') and not key.startswith('backbone'):
                    param.add_(torch.randn_like(param) * 0.1)
    return set_spectral_impl(model.eval(), 'fft')


def set_valid_region(model, on: bool):
    """What the config fields set: the preprocessor's padding mark and the
    backbone's valid_region."""
    model.backbone.valid_region = on
    value = PAD_MARK if on else 0.
    if hasattr(model.data_preprocessor, 'pad_val'):
        model.data_preprocessor.pad_val = value
    else:
        model.data_preprocessor.pad_value = value


def uint8_images(sizes, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return [
        torch.randint(0, 256, (3, *size), generator=gen, dtype=torch.uint8)
        for size in sizes
    ]


def det_data(imgs):
    from mmdet.structures import DetDataSample
    samples = []
    for img in imgs:
        sample = DetDataSample()
        sample.set_metainfo(
            dict(img_shape=tuple(img.shape[1:]),
                 ori_shape=tuple(img.shape[1:]), scale_factor=(1., 1.)))
        samples.append(sample)
    return dict(inputs=list(imgs), data_samples=samples)


def dense_outputs(name, model, imgs):
    """The neck's maps and the dense head's outputs (class scores and box
    deltas per level: what ``test_step`` decodes) of the first image, after
    the config's data preprocessor."""
    with torch.no_grad():
        inputs = model.data_preprocessor(det_data(imgs), False)['inputs']
        feats = model.extract_feat(inputs)
        head = model.bbox_head if name == 'retinanet' else model.rpn_head
        scores, deltas = head(feats)[:2]
    return [[level[:1] for level in maps] for maps in (feats, scores, deltas)]


def interior_difference(batched, alone, band: int) -> float:
    """Relative difference over the image's region less ``band`` cells at
    its bottom and right."""
    h, w = alone.shape[-2:]
    assert h > band and w > band
    return relative_difference(batched[..., :h - band, :w - band],
                               alone[..., :h - band, :w - band])


# cells the neck (one 3x3 conv) and the heads (RetinaNet: 4 stacked convs
# and the output conv; RPN: one 3x3 conv) see around a point, at strides
# 4..16 (P2..P4 of Mask R-CNN, P3..P5 of RetinaNet)
BANDS = {'retinanet': (1, 6), 'mask-rcnn': (1, 2)}


@pytest.mark.parametrize('name', ['retinanet', 'mask-rcnn'])
def test_a_detector_sees_an_image_alone_as_in_a_batch(name):
    model = tiny_model(name)
    small, large = uint8_images([(192, 256), (240, 300)])
    neck_band, head_band = BANDS[name]
    differences = {}
    for on in (True, False):
        set_valid_region(model, on)
        alone = dense_outputs(name, model, [small])
        batched = dense_outputs(name, model, [small, large])
        differences[on] = [
            interior_difference(b, a, band)
            for band, maps_b, maps_a in zip(
                (neck_band, head_band, head_band), batched, alone)
            for b, a in zip(maps_b[:2], maps_a[:2])
        ]
    assert max(differences[True]) < 1e-5
    # today's behaviour: the neck's maps change by percents (the class
    # logits less: their bias dominates)
    assert min(differences[False][:2]) > 1e-2
    assert all(off > 10 * on
               for on, off in zip(differences[True], differences[False]))
    set_valid_region(model, True)
    with torch.no_grad():
        results = model.test_step(det_data([small, large]))
    for result in results:
        assert len(result.pred_instances)
        assert torch.isfinite(result.pred_instances.bboxes).all()


def seg_logits(model, img, size=None):
    """The SegFormer's logits of ``img``, padded by the data preprocessor
    to ``size`` as in a batch of that size (mmseg tests batches of equal
    sizes only), cut back to the image by its postprocessing."""
    from mmseg.structures import SegDataSample
    model.data_preprocessor.test_cfg = dict(size=size) if size else None
    sample = SegDataSample()
    sample.set_metainfo(dict(img_shape=tuple(img.shape[1:]),
                             ori_shape=tuple(img.shape[1:])))
    with torch.no_grad():
        out = model.test_step(dict(inputs=[img], data_samples=[sample]))
    return out[0].seg_logits.data


def test_a_segmentor_predicts_an_image_alone_as_in_a_larger_batch():
    """SegFormer's head resizes every level to stride 4 (bilinear): within
    one stride-32 cell of the border it reads the padding."""
    model = tiny_model('segformer')
    img = uint8_images([(96, 128)])[0]
    set_valid_region(model, False)
    assert interior_difference(seg_logits(model, img, (160, 192)),
                               seg_logits(model, img), 32) > 1e-3
    set_valid_region(model, True)
    alone = seg_logits(model, img)
    for size in ((160, 192), (128, 160)):
        assert interior_difference(seg_logits(model, img, size), alone,
                                   32) < 1e-5


# the two config fields that turn it on, per library
CONFIG_FIELDS = {
    'retinanet': {'model.backbone.valid_region': True,
                  'model.data_preprocessor.pad_value': PAD_MARK},
    'segformer': {'model.backbone.valid_region': True,
                  'model.data_preprocessor.pad_val': PAD_MARK},
}


@pytest.mark.parametrize('name', sorted(CONFIG_FIELDS))
def test_the_config_fields_survive_the_config_dump(name, tmp_path):
    """tools/train.py dumps the config into the work dir and tools/test.py
    reads it back: PAD_MARK survives that (``float('nan')`` is dumped as
    ``nan``, which does not load)."""
    from mmengine.config import Config
    cfg = Config.fromfile(TINY[name])
    cfg.merge_from_dict(CONFIG_FIELDS[name])
    cfg.dump(tmp_path / 'config.py')
    reloaded = Config.fromfile(tmp_path / 'config.py')
    assert reloaded.model.backbone.valid_region is True
    preprocessor = reloaded.model.data_preprocessor
    value = preprocessor.get('pad_value', preprocessor.get('pad_val'))
    assert torch.tensor(value) == torch.tensor(PAD_MARK)
    # the marks reach the backbone as padding
    x = F.pad(torch.zeros(1, 3, 4, 4), (0, 2, 0, 2), value=value)
    assert torch.equal(
        padding_marks(x),
        F.pad(torch.zeros(1, 3, 4, 4, dtype=torch.bool), (0, 2, 0, 2),
              value=True))


@pytest.mark.parametrize('case', ['gfnet-pyramid', 'hornet-gf',
                                  'spectformer-h', 'afno-mit'])
def test_valid_region_trains(case):
    """Gradients flow through the regions (with activation checkpointing
    too) and stay finite despite the NaN padding."""
    backbone = backbone_of(case, valid_region=True, with_cp=True).train()
    x = batch_of(images())
    loss = sum(out.square().mean() for out in backbone(x))
    loss.backward()
    grads = [p.grad for p in backbone.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_an_export_pads_with_zeros_and_fixes_the_region():
    """An exported graph takes one input size: the model keeps valid_region
    (the export fixes its region, tests/test_deployment.py) and the graph's
    padding is 0, not the mark that only PyTorch's regions remove."""
    from mmengine.config import Config

    from mmspectral.deploy.build import load_model, preprocess_meta
    cfg = Config.fromfile(TINY['retinanet'])
    cfg.merge_from_dict(CONFIG_FIELDS['retinanet'])
    assert load_model(cfg).backbone.valid_region
    assert preprocess_meta(cfg, 'retinanet', (100, 150))['pad_value'] == 0.
