"""mmpretrain classification configs of every arch."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint

from mmspectral.converters import (convert_afno, convert_gfnet, convert_hornet,
                                   convert_spectformer, save_checkpoint)
from conftest import REPO, load_fixture

CONFIGS = sorted((REPO / 'configs').glob('*/*_in1k.py'))


def build_classifier(cfg):
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(cfg.model)


def test_every_arch_has_a_config():
    names = {p.name.split('_')[0] for p in CONFIGS}
    assert names == {
        'gfnet-ti', 'gfnet-xs', 'gfnet-s', 'gfnet-b', 'gfnet-h-ti',
        'gfnet-h-s', 'gfnet-h-b', 'afno-ti', 'afno-s', 'afno-b', 'hornet-t',
        'hornet-t-gf', 'hornet-s', 'hornet-s-gf', 'hornet-b', 'hornet-b-gf',
        'hornet-l', 'hornet-l-gf', 'spectformer-t', 'spectformer-xs',
        'spectformer-s', 'spectformer-b', 'spectformer-h-s',
        'spectformer-h-b', 'spectformer-h-l'
    }


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: Path(p).stem)
def test_config_builds_and_runs(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmpretrain'
    model = build_classifier(cfg).eval()
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 224, 224), mode='tensor')
    assert logits.shape == (1, 1000)


def hierarchical_spectformer_arch(fixture):
    kwargs = fixture['official_kwargs']
    return {key: kwargs[key] for key in (
        'embed_dims', 'depths', 'num_heads', 'mlp_ratios', 'stem_hidden_dim')}


@pytest.mark.parametrize('fixture_name,config,convert', [
    ('gfnet_isotropic.pth', 'gfnet/gfnet-ti_8xb128_in1k.py', convert_gfnet),
    ('gfnet_pyramid.pth', 'gfnet/gfnet-h-ti_8xb128_in1k.py', convert_gfnet),
    ('afnonet_tiny.pth', 'afno/afno-ti_8xb128_in1k.py', convert_afno),
    ('hornet_7x7.pth', 'hornet/hornet-t_8xb128_in1k.py', convert_hornet),
    ('hornet_gf.pth', 'hornet/hornet-t-gf_8xb128_in1k.py', convert_hornet),
    ('spectformer_vanilla.pth', 'spectformer/spectformer-xs_8xb128_in1k.py',
     convert_spectformer),
    ('spectformer_hier.pth', 'spectformer/spectformer-h-s_8xb128_in1k.py',
     convert_spectformer),
])
def test_classifier_logits_equal_official(fixture_name, config, convert,
                                          tmp_path):
    fixture = load_fixture(fixture_name)
    arch = hierarchical_spectformer_arch(fixture) if fixture_name == \
        'spectformer_hier.pth' else None
    state_dict, meta = convert(fixture['state_dict'], arch)
    ckpt = save_checkpoint(state_dict, meta, str(tmp_path / 'c.pth'))
    cfg = Config.fromfile(REPO / 'configs' / config)
    cfg.model.backbone.arch = meta['arch']
    cfg.model.head.num_classes = meta['num_classes']
    cfg.model.head.in_channels = state_dict['head.fc.weight'].shape[1]
    model = build_classifier(cfg).eval()
    load_checkpoint(model, ckpt, strict=True)
    with torch.no_grad():
        logits = model(fixture['inputs']['x'], mode='tensor')
    diff = (logits - fixture['outputs']['logits']).abs().max().item()
    assert diff <= 1e-5, diff
