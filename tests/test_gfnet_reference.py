"""Parity with the official GFNet code (tests/data/reference fixtures)."""
import subprocess
import sys

import pytest
import torch

from mmspectral.converters import (CheckpointError, backbone_part,
                                   build_gfnet_backbone, convert_gfnet)
from conftest import REPO, load_fixture
from reference_checks import assert_close, logits_from, run_with_taps


def converted(name):
    fixture = load_fixture(name)
    state_dict, meta = convert_gfnet(fixture['state_dict'])
    model = build_gfnet_backbone(meta).eval()
    model.load_state_dict(backbone_part(state_dict), strict=True)
    return fixture, state_dict, model


def test_isotropic_fixture():
    fixture, state_dict, model = converted('gfnet_isotropic.pth')
    expected = fixture['outputs']
    (out, ), taps = run_with_taps(model, fixture['inputs']['x'],
                                  [model.pos_drop, *model.blocks])
    assert_close('embed', taps[0], expected['embed_bchw'])
    for i in range(2):
        assert_close(f'block{i}', taps[1 + i], expected[f'block{i}_out_bchw'])
    assert_close('tokens_before_norm', taps[-1],
                 expected['tokens_before_norm_bchw'])
    features = out.mean((2, 3))
    assert_close('forward_features', features, expected['forward_features'])
    assert_close('logits', logits_from(features, state_dict),
                 expected['logits'])


def test_pyramid_fixture():
    fixture, state_dict, model = converted('gfnet_pyramid.pth')
    expected = fixture['outputs']
    (out, ), taps = run_with_taps(model, fixture['inputs']['x'],
                                  list(model.stages))
    for i in range(4):
        assert_close(f'stage{i}', taps[i], expected[f'stage{i}_bchw'])
    features = out.mean((2, 3))
    assert_close('forward_features', features, expected['forward_features'])
    assert_close('logits', logits_from(features, state_dict),
                 expected['logits'])


def test_converter_rejects_foreign_keys():
    fixture = load_fixture('gfnet_isotropic.pth')
    state_dict = dict(fixture['state_dict'], **{'dist_token': torch.zeros(1)})
    with pytest.raises(CheckpointError, match='dist_token'):
        convert_gfnet(state_dict)


def run_tool(*args):
    return subprocess.run(
        [sys.executable,
         str(REPO / 'tools/model_converters/gfnet2mmspectral.py'), *args],
        capture_output=True, text=True)


def test_converter_tool(tmp_path):
    """The command line converts an official checkpoint ('model' wrapper,
    as published), refuses to overwrite, and names a wrong arch."""
    fixture = load_fixture('gfnet_pyramid.pth')
    src = tmp_path / 'official.pth'
    torch.save({'model': fixture['state_dict'], 'epoch': 3}, src)
    dst = tmp_path / 'out' / 'gfnet.pth'
    proc = run_tool(str(src), str(dst))
    assert proc.returncode == 0, proc.stderr
    ckpt = torch.load(dst, weights_only=True)
    assert ckpt['meta']['pretrain_img_size'] == 224
    assert ckpt['meta']['arch']['embed_dims'] == [16, 32, 64, 128]
    assert set(k.split('.')[0] for k in ckpt['state_dict']) == {
        'backbone', 'head'}

    stamp = dst.stat().st_mtime_ns
    proc = run_tool(str(src), str(dst))
    assert proc.returncode != 0 and 'exists' in proc.stderr
    assert dst.stat().st_mtime_ns == stamp

    proc = run_tool(str(src), str(tmp_path / 'x.pth'), '--arch', 'h-ti')
    assert proc.returncode != 0
    assert "does not fit GFNet arch 'h-ti'" in proc.stderr
    assert 'shape mismatches' in proc.stderr
    assert not (tmp_path / 'x.pth').exists()

    corrupt = tmp_path / 'corrupt.pth'
    corrupt.write_bytes(b'not a checkpoint')
    proc = run_tool(str(corrupt), str(tmp_path / 'y.pth'))
    assert proc.returncode != 0 and 'not a readable' in proc.stderr
    proc = run_tool(str(tmp_path / 'missing.pth'), str(tmp_path / 'y.pth'))
    assert proc.returncode != 0 and 'not found' in proc.stderr
