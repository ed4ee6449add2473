"""mmpretrain's HorNet configs move over by changing ``type``: its arch
names, dict archs and defaults are accepted, and the same weights give the
same outputs as mmpretrain's own HorNet (the installed one)."""
import pytest
import torch
from mmpretrain.models.backbones import HorNet as MMPretrainHorNet

from mmspectral.converters import backbone_part, convert_hornet
from mmspectral.models import HorNet

MMPRETRAIN_NAMES = ['tiny', 'tiny-gf', 'small', 'small-gf', 'base',
                    'base-gf', 'base-gf384', 'large', 'large-gf',
                    'large-gf384', 't', 't-gf', 'b-gf384', 'l-gf384']


@pytest.mark.parametrize('name', MMPRETRAIN_NAMES)
def test_mmpretrain_arch_names_are_accepted(name):
    ours = HorNet.check_arch(name)
    theirs = MMPretrainHorNet.arch_zoo[name]
    assert ours['base_dim'] == theirs['base_dim']
    assert ours['depths'] == theirs['depths']
    assert ours['orders'] == theirs['orders']
    gf = [i for i, cfg in enumerate(theirs['dw_cfg']) if cfg['type'] == 'GF']
    assert list(ours['global_filter_stages']) == gf
    assert ours.get('pretrain_img_size', 224) == (
        384 if name.endswith('384') else 224)


def test_defaults_are_mmpretrains():
    """A classification config's head expects pooled last-stage vectors."""
    (out, ) = HorNet('tiny').eval()(torch.randn(2, 3, 224, 224))
    assert out.shape == (2, 512)


def mmpretrain_weights_in_ours(theirs: MMPretrainHorNet, **kwargs):
    state = {f'backbone.{k}': v for k, v in theirs.state_dict().items()}
    converted, meta = convert_hornet(state)
    ours = HorNet(meta['arch'], pretrain_img_size=meta['pretrain_img_size'],
                  **kwargs)
    ours.load_state_dict(backbone_part(converted))
    return ours


@pytest.mark.parametrize('arch', ['tiny', 'tiny-gf'])
@pytest.mark.parametrize('size', [(224, 224), (256, 320)])
def test_same_outputs_as_mmpretrain(arch, size):
    dense = dict(out_indices=(0, 1, 2, 3), gap_before_final_norm=False)
    theirs = MMPretrainHorNet(arch, **dense)
    theirs.eval()  # mmpretrain's train() returns None
    with torch.no_grad():  # a layer scale of 1e-6 would hide differences
        for name, param in theirs.named_parameters():
            if 'gamma' in name:
                param.fill_(0.5)
    ours = mmpretrain_weights_in_ours(theirs, **dense).eval()
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        for a, b in zip(ours(x), theirs(x)):
            assert a.shape == b.shape
            assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def frozen_parts(model) -> tuple:
    """Which ``downsample_layers.i`` / ``stages.i`` are frozen, and how many
    parameter tensors (the two libraries name some weights differently)."""
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    return {'.'.join(n.split('.')[:2]) for n in frozen}, len(frozen)


@pytest.mark.parametrize('theirs_k', [0, 1, 2])
def test_frozen_stages_is_mmpretrains_plus_one(theirs_k):
    """Documented difference: mmspectral's frozen_stages=k is mmpretrain's
    k - 1 (the stem counts as stage 0 here)."""
    theirs = MMPretrainHorNet('tiny', frozen_stages=theirs_k)
    theirs.train()
    ours = HorNet('tiny', frozen_stages=theirs_k + 1)
    ours.train()
    assert frozen_parts(ours) == frozen_parts(theirs)


def test_mmpretrain_dict_arch_with_dw_cfg():
    arch = dict(base_dim=16, depths=[1, 1, 2, 1], orders=[2, 3, 4, 5],
                dw_cfg=[dict(type='DW', kernel_size=7)] * 2 +
                [dict(type='GF', h=14, w=8), dict(type='GF', h=7, w=4)])
    ours = HorNet(arch)
    stored = [b.gnconv.dwconv.filter.complex_weight.shape[:2]
              for stage in ours.stages[2:] for b in stage]
    assert stored == [(14, 8)] * 2 + [(7, 4)]
    assert [stage[-1].out_channels for stage in ours.stages] == \
        [16, 32, 64, 128]
    with pytest.raises(ValueError, match='exactly one of'):
        HorNet(dict(arch, global_filter_stages=(2, 3)))
    with pytest.raises(ValueError, match='neither'):
        HorNet(dict(arch, dw_cfg=[dict(type='DW', kernel_size=5)] * 4))


def test_mmpretrain_checkpoint_loads_with_no_converter(tmp_path):
    """A checkpoint of mmpretrain's HorNet-T-GF classifier (its own config
    and class) loads strictly into our config of the same model and gives
    the same logits: the two share the key layout."""
    import mmpretrain
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmengine.runner import load_checkpoint
    from mmpretrain.registry import MODELS

    from conftest import REPO
    theirs_cfg = Config.fromfile(
        f'{mmpretrain.__path__[0]}/.mim/configs/hornet/'
        'hornet-tiny-gf_8xb128_in1k.py')
    ours_cfg = Config.fromfile(
        REPO / 'configs/hornet/hornet-t-gf_8xb128_in1k.py')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        theirs = MODELS.build(theirs_cfg.model)
        ours = MODELS.build(ours_cfg.model)
    assert type(theirs.backbone) is MMPretrainHorNet
    assert type(ours.backbone) is HorNet
    theirs.init_weights()
    with torch.no_grad():  # a layer scale of 1e-5 would hide differences
        for name, param in theirs.named_parameters():
            if 'gamma' in name:
                param.uniform_(0.2, 0.8)
    path = tmp_path / 'hornet-tiny-gf_mmpretrain.pth'
    torch.save({'state_dict': theirs.state_dict(), 'meta': {}}, path)
    load_checkpoint(ours, str(path), strict=True)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    theirs.eval()
    ours.eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        expected = theirs(x, mode='tensor')
        assert torch.allclose(ours(x, mode='tensor'), expected, atol=1e-4,
                              rtol=1e-4)
        # and our own save/load keeps that layout
        ours.load_state_dict(ours.state_dict(), strict=True)
