import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
REFERENCE = Path(
    os.environ.get('MMSPECTRAL_REFERENCE',
                   REPO.parent / 'shared' / 'reference'))


def load_fixture(name: str) -> dict:
    """A numerical fixture made with the official code (skips when the
    ``../shared/reference`` folder is not there)."""
    path = REFERENCE / name
    if not path.is_file():
        pytest.skip(f'reference fixture {path} not available')
    return torch.load(path, map_location='cpu', weights_only=True)


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory):
    """A small copy of the bundled tiny datasets (root with coco/ and
    cityscapes/), made once per session."""
    from mmspectral.datasets import make_tiny_datasets
    root = tmp_path_factory.mktemp('tiny-data')
    make_tiny_datasets(
        str(root), progress=False, num_coco=(8, 4), num_cityscapes=(4, 2))
    return root


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield
