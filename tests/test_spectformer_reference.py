"""Parity with the official SpectFormer (tests/data/reference/
spectformer_{vanilla,hier}.pth)."""
import torch

from mmspectral.converters import (backbone_part, build_spectformer_backbone,
                                   convert_spectformer)
from conftest import load_fixture
from reference_checks import assert_close, logits_from, run_with_taps


def converted(name, arch=None):
    fixture = load_fixture(name)
    state_dict, meta = convert_spectformer(fixture['state_dict'], arch)
    model = build_spectformer_backbone(meta).eval()
    model.load_state_dict(backbone_part(state_dict), strict=True)
    return fixture, state_dict, model


def test_vanilla_fixture():
    fixture, state_dict, model = converted('spectformer_vanilla.pth')
    expected = fixture['outputs']
    (out, ), taps = run_with_taps(model, fixture['inputs']['x'],
                                  [model.pos_drop, *model.blocks])
    assert_close('embed', taps[0], expected['embed_bchw'])
    for i in range(6):
        assert_close(f'block{i}', taps[1 + i], expected[f'block{i}_out_bchw'])
    features = out.mean((2, 3))
    assert_close('forward_features', features, expected['forward_features'])
    assert_close('logits', logits_from(features, state_dict),
                 expected['logits'])
    # the official 6 heads are kept for a checkpoint made with them
    assert model.blocks[4].attn.num_heads == 6


def hierarchical():
    fixture = load_fixture('spectformer_hier.pth')
    kwargs = fixture['official_kwargs']
    arch = {key: kwargs[key] for key in (
        'embed_dims', 'depths', 'num_heads', 'mlp_ratios', 'stem_hidden_dim')}
    return converted('spectformer_hier.pth', arch)


def test_hierarchical_fixture():
    fixture, state_dict, model = hierarchical()
    expected = fixture['outputs']
    x = fixture['inputs']['x']
    norms = [model.norm1, model.norm2, model.norm3, model.block4[-1]]
    ((cls_token, patch_tokens), ), taps = run_with_taps(model, x, norms)
    for i, tap in enumerate(taps):
        assert_close(f'stage{i}', tap, expected[f'stage{i}_bchw'])
    assert_close('forward_features', cls_token,
                 expected['forward_features'])
    # the official inference rule: class head + 0.5 * max token-label head
    logits = logits_from(cls_token, state_dict) + 0.5 * (
        patch_tokens @ state_dict['head.aux_fc.weight'].T +
        state_dict['head.aux_fc.bias']).max(1).values
    assert_close('logits', logits, expected['logits'])


def test_hierarchical_dense_outputs_share_the_weights():
    fixture, state_dict, model = hierarchical()
    from mmspectral.models import SpectFormerH
    dense = SpectFormerH(model.arch_settings).eval()
    missing = dense.load_state_dict(
        backbone_part(state_dict), strict=False)
    assert not missing.missing_keys
    assert all(k.startswith('post_network') for k in missing.unexpected_keys)
    with torch.no_grad():
        outs = dense(fixture['inputs']['x'])
    for i in range(3):
        assert_close(f'stage{i}', outs[i],
                     fixture['outputs'][f'stage{i}_bchw'])
    assert outs[3].shape == (2, 64, 7, 7)
