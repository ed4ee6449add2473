from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
# outputs of the official implementations, see tests/data/reference/README.md
REFERENCE = REPO / 'tests' / 'data' / 'reference'


def load_fixture(name: str) -> dict:
    """A numerical fixture made with the official code."""
    return torch.load(REFERENCE / name, map_location='cpu', weights_only=True)


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory):
    """A small copy of the bundled tiny datasets (root with coco/ and
    cityscapes/), made once per session."""
    from tool_modules import make_tiny_datasets
    root = tmp_path_factory.mktemp('tiny-data')
    make_tiny_datasets(
        str(root), progress=False, num_coco=(8, 4), num_cityscapes=(4, 2))
    return root


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture
def work_dir(tmp_path):
    """A work dir holding an earlier run's files, which no run may touch."""
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'last_checkpoint').write_text('keep me')
    (work / 'iter_1.pth').write_bytes(b'precious')
    return work
