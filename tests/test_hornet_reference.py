"""Parity with the official HorNet (tests/data/reference/hornet_*.pth), and
the mmpretrain checkpoint route."""
import pytest
import torch

from mmspectral.converters import (backbone_part, build_hornet_backbone,
                                   convert_hornet)
from mmspectral.models import HorNet
from conftest import load_fixture
from reference_checks import assert_close, logits_from


def converted(name, mmpretrain=False):
    fixture = load_fixture(name)
    official = fixture['state_dict']
    if mmpretrain:
        official = to_mmpretrain_keys(official)
    state_dict, meta = convert_hornet(official)
    model = build_hornet_backbone(meta).eval()
    model.load_state_dict(backbone_part(state_dict), strict=True)
    return fixture, state_dict, model


def to_mmpretrain_keys(sd):
    """The key mapping of mmpretrain's hornet2mmpretrain.py."""
    out = {}
    for key, value in sd.items():
        if key.startswith('head'):
            out[key.replace('head.', 'head.fc.')] = value
            continue
        key = key.replace('norm.', 'norm3.') if key.startswith(
            'norm') else key
        key = key.replace('gnconv.pws', 'gnconv.projs')
        key = key.replace('gamma1', 'gamma1.weight').replace(
            'gamma2', 'gamma2.weight')
        out['backbone.' + key] = value
    return out


def check_outputs(fixture, state_dict, model, suffix=''):
    expected = fixture['outputs']
    x = fixture['inputs']['x' + suffix]
    taps = []
    handles = [
        stage[-1].register_forward_hook(
            lambda _, __, out: taps.append(out)) for stage in model.stages
    ]
    with torch.no_grad():
        (features, ) = model(x)
    for handle in handles:
        handle.remove()
    for i, tap in enumerate(taps):
        assert_close(f'stage{i}{suffix}', tap, expected[f'stage{i}_bchw'
                                                        f'{suffix}'])
    assert_close('forward_features' + suffix, features,
                 expected['forward_features' + suffix])
    assert_close('logits' + suffix, logits_from(features, state_dict),
                 expected['logits' + suffix])


@pytest.mark.parametrize('name', ['hornet_7x7.pth', 'hornet_gf.pth'])
@pytest.mark.parametrize('mmpretrain', [False, True])
def test_fixture(name, mmpretrain):
    check_outputs(*converted(name, mmpretrain))


def test_gf_fixture_at_256x320_uses_official_bilinear_resize():
    fixture, state_dict, model = converted('hornet_gf.pth')
    check_outputs(fixture, state_dict, model, '_256x320')


def test_inferred_arch():
    _, _, model = converted('hornet_gf.pth')
    assert model.arch_settings == dict(
        base_dim=16, depths=[1, 1, 2, 1], orders=[2, 3, 4, 5],
        global_filter_stages=(2, 3))
    assert isinstance(model, HorNet)
