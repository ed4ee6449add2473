import json
import os
import subprocess
import sys

import pytest
from mmengine.config import Config

from mmspectral.cli import ConfigError, build_model, check_type_names
from mmspectral.cli.checks import check_backbone_archs
from mmspectral.models import GFNet

# runs in a fresh interpreter, so only custom_imports imports mmspectral
BUILD_SCRIPT = r'''
import importlib, json, sys
from mmengine.config import Config
from mmengine.registry import DefaultScope
results = {}
for path in sys.argv[1:]:
    cfg = Config.fromfile(path)
    registry = importlib.import_module(cfg.default_scope + '.registry').MODELS
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = registry.build(cfg.model)
    results[path] = type(model).__module__ + '.' + type(model).__name__
print(json.dumps(results))
'''


def config_text(scope: str, type_name: str) -> str:
    return (f'default_scope = {scope!r}\n'
            "custom_imports = dict(imports=['mmspectral'], "
            'allow_failed_imports=False)\n'
            f'model = dict(type={type_name!r}, arch=dict('
            'embed_dims=[8, 16, 24, 32], depths=[1, 1, 1, 1], '
            'mlp_ratio=2))\n')


def test_builds_from_library_scopes(tmp_path):
    """Configs of mmdet / mmseg / mmpretrain scope build the backbone by its
    scoped name once custom_imports has run."""
    paths = []
    for scope in ('mmdet', 'mmseg', 'mmpretrain'):
        path = tmp_path / f'{scope}.py'
        path.write_text(config_text(scope, 'mmspectral.GFNetH'))
        paths.append(str(path))
    proc = subprocess.run([sys.executable, '-c', BUILD_SCRIPT, *paths],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sorted(results) == sorted(paths)
    assert set(results.values()) == {
        'mmspectral.models.backbones.gfnet.GFNetH'}


def test_registry_is_child_of_mmengine_root_and_shadows_nothing():
    from mmengine.registry import MODELS as ROOT

    from mmspectral.registry import MODELS
    assert MODELS.parent is ROOT
    assert MODELS.scope == 'mmspectral'
    assert ROOT._children['mmspectral'] is MODELS
    assert MODELS.get('GFNet') is GFNet
    for name in MODELS.module_dict:
        assert name not in ROOT.module_dict, name


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
def test_plain_name_gets_the_scoped_name_as_the_answer(tmp_path, scope):
    path = tmp_path / 'plain.py'
    path.write_text(config_text(scope, 'GFNetH'))
    with pytest.raises(ConfigError, match=r"model: unknown type 'GFNetH' in "
                       rf"the {scope} scope; did you mean "
                       r"'mmspectral.GFNetH'"):
        check_type_names(Config.fromfile(str(path)))


def test_close_names_are_suggested(tmp_path):
    path = tmp_path / 'typo.py'
    path.write_text(config_text('mmdet', 'mmspectral.GFNet') +
                    "model.update(neck=dict(type='FPNN'))\n")
    with pytest.raises(ConfigError, match=r"model.neck: unknown type 'FPNN'"
                       r".*did you mean .*'FPN'"):
        check_type_names(Config.fromfile(str(path)))


def test_every_shipped_config_passes_the_type_check():
    from conftest import REPO
    for path in sorted((REPO / 'configs').rglob('*.py')):
        check_type_names(Config.fromfile(str(path)))


def test_mmpretrain_hornet_config_is_mmpretrain_hornet():
    """A plain name means the config's own library's class: mmpretrain's
    HorNet config passes the pre-run checks and builds mmpretrain's HorNet,
    although mmspectral has a HorNet too (with other arch names)."""
    import mmpretrain
    from mmpretrain.models.backbones import HorNet as MMPretrainHorNet
    cfg = Config.fromfile(os.path.join(
        os.path.dirname(mmpretrain.__file__), '.mim', 'configs', 'hornet',
        'hornet-tiny-gf_8xb128_in1k.py'))
    check_type_names(cfg)
    check_backbone_archs(cfg)
    assert type(build_model(cfg).backbone) is MMPretrainHorNet
