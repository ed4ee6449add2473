"""The arguments every mmspectral backbone shares, with one meaning:
output shapes at any size, out_indices, frozen_stages, norm_eval, with_cp,
drop_path_rate, init_cfg, save/load, errors, AMP."""
import math

import pytest
import torch
import torch.nn as nn

from mmspectral.models import IsotropicBackbone
from backbone_cases import CASES, ISOTROPIC, build

ALL = sorted(CASES)
SIZES = [(64, 64), (97, 130), (33, 17), (225, 161)]


def expected_shapes(model, size):
    """(C, H, W) of each output: pyramid stage i has stride 2**(i+2); every
    output of an isotropic backbone has stride 16."""
    if isinstance(model, IsotropicBackbone):
        return [(c, *(math.ceil(s / 16) for s in size))
                for c in model.out_channels]
    return [(c, *(math.ceil(s / 2**(i + 2)) for s in size))
            for c, i in zip(model.out_channels, model.out_indices)]


@pytest.mark.parametrize('case', ALL)
@pytest.mark.parametrize('size', SIZES)
def test_output_shapes_at_any_size(case, size):
    model = build(case).eval()
    outs = model(torch.randn(2, 3, *size))
    assert [tuple(o.shape[1:]) for o in outs] == expected_shapes(model, size)
    assert all(o.shape[0] == 2 for o in outs)
    # mmcv's CPU RoIAlign (Mask R-CNN) misreads maps with other strides
    assert all(o.is_contiguous() for o in outs)


@pytest.mark.parametrize('case', ALL)
def test_parameter_count_does_not_depend_on_input_size(case):
    model = build(case)
    before = sum(p.numel() for p in model.parameters())
    model(torch.randn(1, 3, 97, 130))
    assert sum(p.numel() for p in model.parameters()) == before


@pytest.mark.parametrize('case', ALL)
def test_out_indices_select_outputs(case):
    full = build(case).eval()
    part = build(case, out_indices=(1, -1)).eval()
    part.load_state_dict(full.state_dict(), strict=False)
    x = torch.randn(1, 3, 70, 50)
    outs_full, outs_part = full(x), part(x)
    assert len(outs_part) == 2
    assert torch.allclose(outs_part[0], outs_full[1], atol=1e-5)
    assert torch.allclose(outs_part[1], outs_full[3], atol=1e-5)
    with pytest.raises(ValueError, match='out of range'):
        build(case, out_indices=(len(full.embed_dims), ))


@pytest.mark.parametrize('case', ALL)
@pytest.mark.parametrize('frozen', [0, 1, 2, 4])
def test_frozen_stages(case, frozen):
    model = build(case, frozen_stages=frozen)
    model.train()
    frozen_params = set()
    for index in range(frozen + 1):
        for part in model.stage_parts(index):
            assert not part.training
            frozen_params |= {id(p) for p in part.parameters()}
    assert frozen_params
    for param in model.parameters():
        assert param.requires_grad == (id(param) not in frozen_params)
    # gradients reach every trainable weight and no frozen one (with
    # frozen_stages=4 AFNO-MiT has nothing left to train: no output norms)
    outs = model(torch.randn(1, 3, 64, 64))
    loss = sum((o * torch.randn_like(o)).sum() for o in outs)
    trainable = any(p.requires_grad for p in model.parameters())
    assert trainable == (case != 'afno-mit' or frozen < 4)
    assert loss.requires_grad == trainable
    if trainable:
        loss.backward()
    for name, param in model.named_parameters():
        assert (param.grad is not None) == param.requires_grad, name


@pytest.mark.parametrize('case', ALL)
def test_frozen_stages_out_of_range(case):
    with pytest.raises(ValueError, match='frozen_stages'):
        build(case, frozen_stages=5)


@pytest.mark.parametrize('case', ['hornet-gf', 'spectformer-h'])
def test_norm_eval_keeps_batchnorm_in_eval(case):
    # HorNet: every norm made BN; SpectFormer-H: its stem
    bn = {} if case == 'spectformer-h' else dict(norm_cfg=dict(type='BN'))
    model = build(case, norm_eval=True, **bn)
    model.train()
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(not m.training for m in bns)
    stats = bns[0].running_mean.clone()
    model(torch.randn(2, 3, 64, 64))
    assert torch.equal(stats, bns[0].running_mean)
    model = build(case, **bn).train()
    assert all(m.training for m in model.modules()
               if isinstance(m, nn.BatchNorm2d))


@pytest.mark.parametrize('case', ALL)
def test_with_cp_same_outputs_and_gradients(case):
    plain = build(case).train()
    ckpt = build(case, with_cp=True).train()
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 48, 40, requires_grad=True)
    grads = []
    for model in (plain, ckpt):
        loss = sum(o.square().mean() for o in model(x))
        grads.append(torch.autograd.grad(loss, list(model.parameters())))
    for g1, g2 in zip(*grads):
        assert torch.allclose(g1, g2, atol=1e-6)


@pytest.mark.parametrize('case', ALL)
def test_drop_path_rate(case):
    model = build(case, drop_path_rate=0.3)
    rates = [getattr(m.drop_path, 'drop_prob', 0.) for m in model.modules()
             if hasattr(m, 'drop_path')]
    assert rates[0] == 0 and rates[-1] == pytest.approx(0.3)
    assert rates == sorted(rates)
    x = torch.randn(2, 3, 64, 64)
    model.train()
    torch.manual_seed(1)
    a = model(x)[-1]
    torch.manual_seed(2)
    b = model(x)[-1]
    assert not torch.allclose(a, b)
    model.eval()
    assert torch.allclose(model(x)[-1], model(x)[-1])


@pytest.mark.parametrize('case', ALL)
def test_init_cfg_pretrained_with_prefix(case, tmp_path):
    source = build(case)
    ckpt = tmp_path / 'cls.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in
                               source.state_dict().items()}}, ckpt)
    model = build(case, init_cfg=dict(
        type='Pretrained', checkpoint=str(ckpt), prefix='backbone.'))
    model.init_weights()
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


@pytest.mark.parametrize('case', ALL)
def test_save_load_round_trip(case, tmp_path):
    model = build(case).eval()
    x = torch.randn(1, 3, 50, 70)
    expected = model(x)
    torch.save(model.state_dict(), tmp_path / 'm.pth')
    other = build(case).eval()
    other.load_state_dict(
        torch.load(tmp_path / 'm.pth', weights_only=True))
    for a, b in zip(expected, other(x)):
        assert torch.equal(a, b)


@pytest.mark.parametrize('case', sorted(ISOTROPIC))
def test_loads_checkpoint_of_other_pretrain_size(case):
    large = build(case, pretrain_img_size=384)
    model = build(case)
    model.load_state_dict(large.state_dict())
    assert model.pos_embed.weight.shape == (1, 196, 32)


@pytest.mark.parametrize('case', ALL)
def test_clear_errors(case):
    cls, arch = CASES[case]
    name = cls.__name__
    with pytest.raises(ValueError, match=rf"Unknown {name} arch 'huge'"):
        cls('huge')
    key = cls.essential_keys[-1]
    with pytest.raises(ValueError, match=rf"missing keys \['{key}'\]"):
        cls({k: v for k, v in arch.items() if k != key})
    with pytest.raises(ValueError, match=r"unknown keys \['heads'\]"):
        cls(dict(arch, heads=3))
    with pytest.raises(ValueError, match=r'\(B, 3, H, W\).*\(1, 1, 64, 64\)'):
        cls(arch)(torch.randn(1, 1, 64, 64))


@pytest.mark.parametrize('case', ALL)
def test_amp_cpu_bfloat16(case):
    model = build(case).eval()
    x = torch.randn(1, 3, 61, 47)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        outs = model(x)
    # bf16 keeps 8 significant bits: each rounding errs by up to 2**-9
    # (0.2%) of the value, and through these archs' few dozen layers the
    # errors add up to a relative (L2) error of 0.3-1.1% (measured); 3%
    # bounds that with room for other seeds, and fails for any error an
    # order of magnitude beyond bf16's own
    for out, expected in zip(outs, model(x)):
        assert torch.isfinite(out).all()
        error = (out.float() - expected).norm() / expected.norm()
        assert error < 0.03


def save_as_classifier(model, path):
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in
                               model.state_dict().items()},
                'meta': {}}, path)
    return str(path)


def pretrained(checkpoint):
    return dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')


@pytest.mark.parametrize('case', ALL)
def test_classification_checkpoint_fits_the_dense_backbone(case, tmp_path):
    """Only the dense adapters (output norms) may be missing."""
    ckpt = save_as_classifier(build(case, out_indices=(3, )),
                              tmp_path / 'cls.pth')
    model = build(case, init_cfg=pretrained(ckpt))
    model.init_weights()


@pytest.mark.parametrize('source,target,missing', [
    ('h-s', 'h-b', 'stages.2.10.'), ('xs', 's', 'blocks.12.')])
def test_pretrained_of_a_smaller_arch_is_refused(source, target, missing,
                                                 tmp_path):
    from mmspectral.checkpoint import CheckpointError
    from mmspectral.models import GFNet, GFNetH
    cls = GFNetH if source.startswith('h-') else GFNet
    ckpt = save_as_classifier(cls(source), tmp_path / f'{source}.pth')
    model = cls(target, init_cfg=pretrained(ckpt))
    with pytest.raises(CheckpointError) as error:
        model.init_weights()
    message = str(error.value)
    assert f"does not fit this {type(model).__name__} arch '{target}'" in \
        message
    assert 'model weights missing from the checkpoint' in message
    assert missing in message


def test_pretrained_holding_only_the_stem_is_refused(tmp_path):
    from mmspectral.checkpoint import CheckpointError
    source = build('gfnet-pyramid')
    ckpt = tmp_path / 'stem.pth'
    torch.save({f'backbone.{k}': v for k, v in source.state_dict().items()
                if k.startswith('patch_embed.')}, ckpt)
    model = build('gfnet-pyramid', init_cfg=pretrained(str(ckpt)))
    with pytest.raises(CheckpointError, match=r'missing from the checkpoint '
                       r'\(57\): pos_embed.weight, downsamples.0.weight'):
        model.init_weights()


def test_nan_pretrained_checkpoint_is_refused(tmp_path):
    from mmspectral.checkpoint import CheckpointError
    source = build('gfnet-pyramid')
    state = source.state_dict()
    state['stages.0.0.mlp.fc1.weight'][0, 0] = float('nan')
    ckpt = save_as_classifier(source, tmp_path / 'nan.pth')
    model = build('gfnet-pyramid', init_cfg=pretrained(ckpt))
    with pytest.raises(CheckpointError, match='NaN or infinite'):
        model.init_weights()


@pytest.mark.parametrize('case', ALL)
@pytest.mark.parametrize('shape', [(0, 3, 64, 64), (1, 3, 0, 64),
                                   (1, 3, 64, 0)])
def test_empty_inputs_are_refused(case, shape):
    with pytest.raises(ValueError, match='empty image batch.*at least 1'):
        build(case)(torch.randn(*shape))


def test_integer_inputs_are_refused():
    with pytest.raises(ValueError, match='floating-point image batch'):
        build('gfnet-pyramid')(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))


@pytest.mark.parametrize('case', ALL)
def test_init_weights_applies_the_default_init_cfg(case):
    """Weights are initialised by init_weights() (the Runner calls it), as
    the family's default init_cfg says: the official initialisation."""
    cls, arch = CASES[case]
    model = cls(arch)
    assert model.init_cfg == cls.default_init_cfg
    # AFNO-MiT's only weight layers are convolutions (fan-out normal)
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)] or \
        [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    for layer in layers:
        nn.init.ones_(layer.weight)
    model.init_weights()
    weights = torch.cat([m.weight.flatten() for m in layers])
    assert not (weights == 1).any() and abs(weights.mean()) < 0.02
    if isinstance(layers[0], nn.Linear):
        assert 0.015 < weights.std() < 0.025


@pytest.mark.parametrize('case', ALL)
def test_init_cfg_replaces_the_default(case):
    cls, arch = CASES[case]
    model = cls(arch, init_cfg=dict(type='Constant', layer='Linear', val=0.,
                                    bias=0.))
    model.init_weights()
    assert all(not m.weight.any() for m in model.modules()
               if isinstance(m, nn.Linear))


@pytest.mark.parametrize('case', ALL)
def test_frozen_right_after_construction(case):
    """No family has to remember to freeze: the base does it once the
    layers exist (DDP wraps the model before train() is called)."""
    cls, arch = CASES[case]
    model = cls(arch, frozen_stages=1)
    frozen = [p for i in (0, 1) for part in model.stage_parts(i)
              for p in ([part] if isinstance(part, nn.Parameter) else
                        part.parameters())]
    assert frozen and not any(p.requires_grad for p in frozen)


@pytest.mark.parametrize('case', ALL)
def test_shared_arguments_are_keyword_only(case):
    cls, arch = CASES[case]
    with pytest.raises(TypeError):
        cls(arch, 3)


@pytest.mark.parametrize('cls_name,arch', [('GFNet', 'h-ti'),
                                           ('SpectFormer', 'h-s')])
def test_an_isotropic_class_builds_no_hierarchical_arch(cls_name, arch):
    import mmspectral.models as models
    with pytest.raises(ValueError, match=f"Unknown {cls_name} arch '{arch}'"):
        getattr(models, cls_name)(arch)
    with pytest.raises(ValueError, match='must be ints'):
        getattr(models, cls_name)(dict(embed_dims=[8] * 4, depths=[1] * 4,
                                       mlp_ratio=2))


def test_arguments_that_do_not_apply_are_refused():
    cls, arch = CASES['afno']
    with pytest.raises(ValueError, match='AFNO has no global filters'):
        cls(arch, resize_mode='bilinear')
    cls, arch = CASES['afno-mit']
    for kwargs in (dict(pretrain_img_size=384), dict(resize_cache_size=4)):
        with pytest.raises(ValueError, match='do not apply'):
            cls(arch, **kwargs)
