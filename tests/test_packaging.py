"""The built wheel installs into a clean folder and works from there: every
module of mmspectral imports, and the configs it ships are found."""
import os
import shutil
import subprocess
import sys

from conftest import REPO

# what the wheel is built from (the sdist's content)
SOURCES = ('setup.py', 'setup.cfg', 'README.md', 'LICENSE', 'MANIFEST.in',
           'requirements', 'mmspectral', 'configs')

CHECK = '''
import importlib, os, pkgutil, sys
target, repo = sys.argv[1], sys.argv[2]
# nothing of the source tree: not the checkout on the path (a venv inside
# it stays), no editable-install finder
sys.path[:] = [p for p in sys.path if os.path.abspath(p or '.') != repo]
sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in getattr(
    f, '__name__', type(f).__name__).lower()]
import mmspectral
names = [m.name for m in pkgutil.walk_packages(mmspectral.__path__,
                                               'mmspectral.')]
for name in names:
    module = importlib.import_module(name)
    assert module.__file__.startswith(target), (name, module.__file__)
assert 'mmspectral.cli' not in sys.modules or 'mmspectral.cli' in names
from mmengine.config import Config
from mmspectral.utils.config_path import get_config_path
path = get_config_path('gfnet/mask-rcnn_gfnet-h-ti_fpn_1x_coco')
assert path == os.path.join(target, 'mmspectral', '.mim', 'configs', 'gfnet',
                            'mask-rcnn_gfnet-h-ti_fpn_1x_coco.py'), path
assert get_config_path('hornet-t-gf_8xb128_in1k.py').endswith(
    'hornet/hornet-t-gf_8xb128_in1k.py')
assert Config.fromfile(path).model.backbone.type == 'mmspectral.GFNetH'
print(len(names), 'modules')
'''


def test_wheel_installs_and_imports_from_a_clean_target(tmp_path):
    source = tmp_path / 'source'
    source.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns(
                '__pycache__', '*.pyc', '.mim'))
        else:
            shutil.copy(path, source / name)
    pip = [sys.executable, '-m', 'pip', '--disable-pip-version-check', '-q']
    subprocess.run(pip + ['wheel', '--no-deps', '--no-build-isolation', '-w',
                          str(tmp_path / 'dist'), str(source)],
                   check=True, capture_output=True, cwd=tmp_path)
    wheel, = (tmp_path / 'dist').glob('mmspectral-*.whl')
    target = tmp_path / 'target'
    subprocess.run(pip + ['install', '--no-deps', '--target', str(target),
                          str(wheel)],
                   check=True, capture_output=True, cwd=tmp_path)
    proc = subprocess.run(
        [sys.executable, '-c', CHECK, str(target), str(REPO)],
        capture_output=True, text=True, cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(target)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'modules' in proc.stdout
