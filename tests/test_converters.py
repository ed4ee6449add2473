"""The converters refuse what they cannot convert faithfully, and never
leave a partial or changed destination behind."""
import os

import pytest
import torch

from mmspectral.converters import common, detect_family, run_converter
from mmspectral.converters.gfnet import build_gfnet_backbone, convert_gfnet
from mmspectral.models import GFNet
from conftest import load_fixture

FIXTURES = {
    'GFNet': ['gfnet_isotropic.pth', 'gfnet_pyramid.pth'],
    'AFNO': ['afnonet_tiny.pth'],
    'HorNet': ['hornet_gf.pth', 'hornet_7x7.pth'],
    'SpectFormer': ['spectformer_vanilla.pth', 'spectformer_hier.pth'],
}
CONVERTERS = {
    family: os.path.join('tools', 'model_converters',
                         f'{family.lower()}2mmspectral.py')
    for family in FIXTURES
}


def official(name, tmp_path):
    path = tmp_path / name
    torch.save({'model': load_fixture(name)['state_dict']}, path)
    return path


@pytest.mark.parametrize('family', sorted(FIXTURES))
def test_every_official_layout_is_recognised(family):
    for name in FIXTURES[family]:
        assert detect_family(load_fixture(name)['state_dict']) == family


def convert_gfnet_cli(argv):
    run_converter(list(map(str, argv)), 'GFNet', 'raoyongming/GFNet',
                  convert_gfnet, build_gfnet_backbone, GFNet.arch_zoo)


def cli(script: str, argv):
    """Run a converter script's command line in this process."""
    import runpy
    import sys
    saved = sys.argv
    sys.argv = [script, *map(str, argv)]
    try:
        runpy.run_path(script, run_name='__main__')
    finally:
        sys.argv = saved


@pytest.mark.parametrize('target', sorted(FIXTURES))
def test_a_checkpoint_of_another_family_is_refused(target, tmp_path,
                                                   capsys):
    from conftest import REPO
    for family, names in FIXTURES.items():
        if family == target:
            continue
        src = official(names[0], tmp_path)
        with pytest.raises(SystemExit):
            cli(str(REPO / CONVERTERS[target]), [src, tmp_path / 'out.pth'])
        err = capsys.readouterr().err
        assert f'is a {family} checkpoint, not a {target} one' in err, err
        assert f'{family.lower()}2mmspectral.py' in err
        assert not (tmp_path / 'out.pth').exists()


def test_an_already_converted_checkpoint_is_refused(tmp_path, capsys):
    src = official('gfnet_pyramid.pth', tmp_path)
    dst = tmp_path / 'converted.pth'
    convert_gfnet_cli([src, dst])
    with pytest.raises(SystemExit):
        convert_gfnet_cli([dst, tmp_path / 'again.pth'])
    assert 'already an mmspectral checkpoint' in capsys.readouterr().err


@pytest.mark.parametrize('failure', ['read-only', 'disk full'])
def test_unwritable_destination_changes_nothing(tmp_path, capsys,
                                                monkeypatch, failure):
    src = official('gfnet_pyramid.pth', tmp_path)
    dst = tmp_path / 'out' / 'gfnet.pth'
    dst.parent.mkdir()
    dst.write_bytes(b'the user\'s earlier file')
    if failure == 'read-only':
        def refuse(*args, **kwargs):
            raise PermissionError(13, 'Permission denied')
        monkeypatch.setattr(common, '_create_file', refuse)
    else:
        real_save = torch.save

        def fill_up(obj, f, *args, **kwargs):
            real_save(obj, f, *args, **kwargs)
            raise OSError(28, 'No space left on device')
        monkeypatch.setattr(torch, 'save', fill_up)
    with pytest.raises(SystemExit):
        convert_gfnet_cli([src, dst, '--overwrite'])
    err = capsys.readouterr().err
    reason = 'Permission denied' if failure == 'read-only' else \
        'No space left on device'
    assert f'cannot write {dst}: {reason}; nothing was written' in err
    assert dst.read_bytes() == b'the user\'s earlier file'
    assert sorted(os.listdir(dst.parent)) == ['gfnet.pth']
