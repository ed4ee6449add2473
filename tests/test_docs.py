"""The documentation a maintainer and a user read: every config is in its
family's metafile, every relative link resolves, the README stays short."""
import re

import pytest
import yaml

from conftest import REPO

FAMILIES = ('gfnet', 'afno', 'hornet', 'spectformer')


@pytest.mark.parametrize('family', FAMILIES)
def test_metafile_lists_every_config(family):
    folder = REPO / 'configs' / family
    meta = yaml.safe_load((folder / 'metafile.yml').read_text())
    listed = [m['Config'] for m in meta['Models']]
    assert sorted(listed) == sorted(
        f'configs/{family}/{p.name}' for p in folder.glob('*.py'))
    assert meta['Collections'][0]['README'] == f'configs/{family}/README.md'
    for model in meta['Models']:
        if model['Name'].endswith('_in1k'):
            assert model['Metadata']['Parameters'] > 1e6


def markdown_files():
    return [REPO / 'README.md', *sorted((REPO / 'docs').glob('*.md')),
            *(REPO / 'configs' / f / 'README.md' for f in FAMILIES)]


@pytest.mark.parametrize('path', markdown_files(),
                         ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(path):
    for target in re.findall(r'\]\(([^)#:]+)(?:#[^)]*)?\)', path.read_text()):
        assert (path.parent / target).exists(), f'{path.name}: {target}'


def test_readme_is_short():
    assert len((REPO / 'README.md').read_text().splitlines()) <= 250


@pytest.mark.parametrize('path', markdown_files(),
                         ids=lambda p: str(p.relative_to(REPO)))
def test_no_placeholder_left(path):
    """A line holding only an ALL_CAPS_WORD is a table or figure not yet
    pasted in."""
    assert not re.findall(r'^[A-Z]+(?:_[A-Z]+)+$', path.read_text(), re.M)
