"""Weights that cannot be right are refused wherever a fit is checked, and
the converters write (and every reader reads) safetensors, with the user's
umask, atomically, never over an existing file."""
import os
import stat

import pytest
import torch
from mmengine.runner import CheckpointLoader, load_checkpoint

import mmspectral  # noqa: F401
from mmspectral.checkpoint import (CheckpointError, check_fits,
                                   read_checkpoint, state_dict_of)
from mmspectral.converters import run_converter
from mmspectral.converters.gfnet import build_gfnet_backbone, convert_gfnet
from mmspectral.models import GFNet, GFNetH
from conftest import load_fixture
from tool_runs import run

TINY_GFNET = dict(embed_dims=[8, 8, 8, 8], depths=[1, 1, 1, 1], mlp_ratio=1)


def official(tmp_path, edit=None, name='official.pth'):
    """The official pyramid GFNet fixture as an official checkpoint, with
    ``edit(state_dict)`` applied."""
    state = dict(load_fixture('gfnet_pyramid.pth')['state_dict'])
    if edit:
        edit(state)
    path = tmp_path / name
    torch.save({'model': state}, path)
    return path


def convert(argv):
    run_converter(list(map(str, argv)), 'GFNet', 'raoyongming/GFNet',
                  convert_gfnet, build_gfnet_backbone, {
                      **GFNet.arch_zoo,
                      **GFNetH.arch_zoo
                  })


# -- weights that cannot be right ---------------------------------------------


@pytest.mark.parametrize('bad', ['int', 'bool', 'complex', 'meta'])
def test_check_fits_refuses_weights_of_another_kind(bad):
    model = torch.nn.Linear(2, 2)
    state = dict(model.state_dict())
    state['weight'] = {
        'int': lambda w: w.long(),
        'bool': lambda w: w > 0,
        'complex': lambda w: w.to(torch.complex64),
        'meta': lambda w: w.to('meta'),
    }[bad](state['weight'])
    with pytest.raises(CheckpointError) as info:
        check_fits(model.state_dict(), state, 'the model', 'ckpt.pth')
    message = str(info.value)
    assert 'ckpt.pth cannot be the weights of the model' in message
    assert 'weight' in message and 'bias' not in message
    assert ('meta device' if bad == 'meta' else 'dtype mismatches') in message


def test_integer_counters_and_half_weights_fit():
    model = torch.nn.BatchNorm2d(2)
    state = {k: v.half() if v.is_floating_point() else v.int()
             for k, v in model.state_dict().items()}
    check_fits(model.state_dict(), state, 'the model', 'ckpt.pth')


@pytest.mark.parametrize('bad', ['int', 'meta'])
def test_a_pretrained_backbone_refuses_them(tmp_path, bad):
    """int weights were once copied in silently (and cast: mIoU dropped)."""
    state = GFNetH(arch=TINY_GFNET).state_dict()
    key = 'patch_embed.weight'
    state[key] = (state[key] * 100).long() if bad == 'int' else \
        state[key].to('meta')
    path = tmp_path / 'pretrained.pth'
    torch.save({'state_dict': state}, path)
    model = GFNetH(arch=TINY_GFNET,
                   init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(CheckpointError, match=key):
        model.init_weights()


@pytest.mark.parametrize('bad', ['nan', 'inf', 'meta'])
def test_converters_refuse_non_finite_or_empty_weights(tmp_path, capsys,
                                                       bad):
    def spoil(state):
        key = next(k for k in state if k.endswith('complex_weight'))
        state[key] = state[key].to('meta') if bad == 'meta' else \
            state[key].index_fill(0, torch.tensor([0]), float(bad))

    src = official(tmp_path, spoil)
    with pytest.raises(SystemExit):
        convert([src, tmp_path / 'out.pth'])
    err = capsys.readouterr().err
    assert 'complex_weight' in err
    assert ('meta device' if bad == 'meta' else 'NaN or infinite') in err
    assert not (tmp_path / 'out.pth').exists()


def test_filter_plots_refuse_nan_weights(tmp_path):
    src = official(tmp_path, lambda state: state.update({
        k: v * float('nan')
        for k, v in state.items() if k.endswith('complex_weight')
    }))
    proc = run(src, '--out', tmp_path / 'plots',
               tool='analysis_tools/visualize_filters.py')
    assert proc.returncode != 0
    assert 'NaN or infinite' in proc.stderr, proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr


# -- safetensors --------------------------------------------------------------


def test_converters_write_safetensors_every_reader_reads(tmp_path):
    src = official(tmp_path)
    pth, safe = tmp_path / 'gfnet.pth', tmp_path / 'gfnet.safetensors'
    convert([src, pth])
    convert([src, safe])
    assert safe.read_bytes()[8:9] == b'{'  # a safetensors header
    expected = read_checkpoint(str(pth))
    loaded = read_checkpoint(str(safe))
    assert sorted(loaded) == ['meta', 'state_dict']  # no optimizer state
    assert loaded['meta'] == expected['meta']
    for key, value in expected['state_dict'].items():
        assert torch.equal(loaded['state_dict'][key], value), key
    # load_from / --resume (mmengine's loader), init_cfg=Pretrained
    assert sorted(CheckpointLoader.load_checkpoint(str(safe))) == \
        ['meta', 'state_dict']
    backbone = build_gfnet_backbone(expected['meta'])
    backbone.load_pretrained(str(safe), prefix='backbone.')
    classifier = torch.nn.Module()
    classifier.backbone = build_gfnet_backbone(expected['meta'])
    load_checkpoint(classifier, str(safe), strict=False)
    state = state_dict_of(loaded, str(safe), prefix='backbone.')
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, state[key])
        assert torch.equal(classifier.backbone.state_dict()[key], state[key])


def test_a_safetensors_file_is_known_by_its_content(tmp_path):
    from safetensors.torch import save
    path = tmp_path / 'weights.bin'
    path.write_bytes(save({'w': torch.ones(2)}))
    assert torch.equal(read_checkpoint(str(path))['state_dict']['w'],
                       torch.ones(2))
    # a header size whose first byte is that of a pickle (0x80)
    data = next(data for data in (
        save({'w': torch.ones(2)}, metadata={'pad': 'x' * n})
        for n in range(256)) if data[0] == 0x80)
    path.write_bytes(data)
    assert torch.equal(read_checkpoint(str(path))['state_dict']['w'],
                       torch.ones(2))
    broken = tmp_path / 'broken.safetensors'
    broken.write_bytes(save({'w': torch.ones(2)})[:-4])
    with pytest.raises(CheckpointError,
                       match='broken.safetensors is not a readable '
                       'safetensors file'):
        read_checkpoint(str(broken))


def test_test_tool_evaluates_a_safetensors_checkpoint(tiny_data, tmp_path):
    from safetensors.torch import save_file

    from mmspectral.cli.run_setup import load_config
    from mmspectral.cli.runner import build_model
    from tool_runs import SEG, write_config
    config = write_config(tmp_path, SEG, tiny_data / 'cityscapes', 1)
    state = build_model(load_config(str(config))).state_dict()
    path = tmp_path / 'model.safetensors'
    save_file({k: v.clone().contiguous() for k, v in state.items()},
              str(path))
    proc = run(config, path, '--work-dir', tmp_path / 'work',
               tool='test.py')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'mIoU' in proc.stdout + proc.stderr


# -- how the converters write -------------------------------------------------


@pytest.mark.parametrize('suffix', ['.pth', '.safetensors'])
def test_converter_outputs_get_the_umask(tmp_path, suffix):
    src = official(tmp_path)
    dst = tmp_path / f'out{suffix}'
    old = os.umask(0o022)
    try:
        convert([src, dst])
    finally:
        os.umask(old)
    assert stat.S_IMODE(dst.stat().st_mode) == 0o644


def test_a_file_that_appears_while_converting_is_kept(tmp_path, capsys,
                                                      monkeypatch):
    src = official(tmp_path)
    dst = tmp_path / 'out.pth'
    real_save = torch.save

    def save_while_another_writes(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        if not dst.exists():
            dst.write_bytes(b'written meanwhile')

    monkeypatch.setattr(torch, 'save', save_while_another_writes)
    with pytest.raises(SystemExit):
        convert([src, dst])
    assert 'appeared while converting' in capsys.readouterr().err
    assert dst.read_bytes() == b'written meanwhile'
    assert sorted(os.listdir(tmp_path)) == ['official.pth', 'out.pth']


def test_overwrite_replaces_atomically(tmp_path):
    src = official(tmp_path)
    dst = tmp_path / 'out.safetensors'
    dst.write_bytes(b'old')
    convert([src, dst, '--overwrite'])
    assert read_checkpoint(str(dst))['meta']['arch']
    assert sorted(os.listdir(tmp_path)) == ['official.pth', 'out.safetensors']
