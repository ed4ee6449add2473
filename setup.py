import os.path as osp
import re
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = osp.dirname(osp.abspath(__file__))


def read_version():
    with open(osp.join(HERE, 'mmspectral', 'version.py')) as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


def read_requirements(name):
    """Requirement lines of ``requirements/{name}.txt`` without comments."""
    with open(osp.join(HERE, 'requirements', f'{name}.txt')) as f:
        lines = (line.split('#', 1)[0].strip() for line in f)
        return [line for line in lines if line]


class BuildWithConfigs(build_py):
    """Ship ``configs/`` in the package as ``mmspectral/.mim/configs``, as
    the OpenMMLab packages do, so that an installed mmspectral finds its
    configs (:func:`mmspectral.utils.config_path.get_config_path`)."""

    def run(self):
        super().run()
        target = osp.join(self.build_lib, 'mmspectral', '.mim', 'configs')
        if osp.isdir(target):
            shutil.rmtree(target)
        shutil.copytree(
            osp.join(HERE, 'configs'), target,
            ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))


setup(
    name='mmspectral',
    version=read_version(),
    description='Fourier-domain backbones (GFNet, AFNO, SpectFormer, HorNet) '
    'for dense prediction on the OpenMMLab stack',
    long_description=open(osp.join(HERE, 'README.md')).read()
    if osp.exists(osp.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    include_package_data=True,
    python_requires='>=3.8',
    install_requires=read_requirements('runtime') + ['torch', 'torchvision'],
    extras_require={
        'mim': read_requirements('mminstall'),
        'tests': read_requirements('tests'),
        'optional': read_requirements('optional'),
        'deploy': read_requirements('deploy'),
    },
    license='Apache License 2.0',
    cmdclass={'build_py': BuildWithConfigs},
    zip_safe=False,
)
