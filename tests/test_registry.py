import json
import subprocess
import sys

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


def test_builds_from_library_scopes(tmp_path):
    """Configs of mmdet / mmseg / mmpretrain scope build the backbone by the
    scoped and the plain type name once custom_imports has run."""
    paths = []
    for scope in ('mmdet', 'mmseg', 'mmpretrain'):
        for type_name in ('mmspectral.GFNet', 'GFNet'):
            path = tmp_path / f'{scope}_{type_name}.py'
            path.write_text(
                f'default_scope = {scope!r}\n'
                "custom_imports = dict(imports=['mmspectral'], "
                'allow_failed_imports=False)\n'
                f'model = dict(type={type_name!r}, arch=dict('
                'embed_dims=[8, 16, 24, 32], depths=[1, 1, 1, 1], '
                'mlp_ratio=2))\n')
            paths.append(str(path))
    proc = subprocess.run([sys.executable, '-c', BUILD_SCRIPT, *paths],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sorted(results) == sorted(paths)
    assert set(results.values()) == {'mmspectral.models.backbones.gfnet.GFNet'}


def test_registry_is_child_of_mmengine_root():
    from mmengine.registry import MODELS as ROOT

    from mmspectral.registry import MODELS
    assert MODELS.parent is ROOT
    assert MODELS.scope == 'mmspectral'
    assert ROOT._children['mmspectral'] is MODELS
    assert MODELS.get('GFNet') is GFNet
