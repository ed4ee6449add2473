"""Parity with the official AFNONet (tests/data/reference/afnonet_tiny.pth)."""
import torch

from mmspectral.converters import (backbone_part, build_afno_backbone,
                                   convert_afno)
from conftest import load_fixture
from reference_checks import assert_close, logits_from, run_with_taps


def converted(double_skip=False):
    fixture = load_fixture('afnonet_tiny.pth')
    state_dict, meta = convert_afno(fixture['state_dict'])
    model = build_afno_backbone(meta)
    for block in model.blocks:
        block.double_skip = double_skip
    model.load_state_dict(backbone_part(state_dict), strict=True)
    return fixture, state_dict, model.eval()


def test_afnonet_fixture():
    fixture, state_dict, model = converted()
    expected = fixture['outputs']
    (out, ), taps = run_with_taps(model, fixture['inputs']['x'],
                                  [model.pos_drop, *model.blocks])
    assert_close('embed', taps[0], expected['embed_bchw'])
    for i in range(2):
        assert_close(f'block{i}', taps[1 + i], expected[f'block{i}_out_bchw'])
    features = out.mean((2, 3))
    assert_close('forward_features', features, expected['forward_features'])
    assert_close('logits', logits_from(features, state_dict),
                 expected['logits'])


def test_afnonet_fixture_double_skip():
    fixture, _, model = converted(double_skip=True)
    expected = fixture['outputs']
    (out, ), taps = run_with_taps(model, fixture['inputs']['x'],
                                  [model.blocks[-1]])
    assert_close('tokens_before_norm', taps[0],
                 expected['tokens_before_norm_bchw__double_skip_true'])
    assert_close('forward_features', out.mean((2, 3)),
                 expected['forward_features__double_skip_true'])


def test_inferred_arch():
    fixture, _, model = converted()
    assert model.arch_settings == dict(
        embed_dims=64, depths=2, num_blocks=4, mlp_ratio=4)
    assert torch.equal(model.blocks[0].filter.w1,
                       fixture['state_dict']['blocks.0.filter.w1'])
