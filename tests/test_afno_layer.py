import pytest
import torch

from mmspectral.models.layers import AFNO2d, kept_mode_indices
from conftest import load_fixture


def reference_layer():
    fixture = load_fixture('afno2d_layer.pth')
    kwargs = fixture['official_kwargs']
    layer = AFNO2d(
        kwargs['hidden_size'],
        num_blocks=kwargs['num_blocks'],
        sparsity_threshold=kwargs['sparsity_threshold'],
        hard_thresholding_fraction=kwargs['hard_thresholding_fraction'],
        hidden_size_factor=kwargs['hidden_size_factor'])
    layer.load_state_dict(fixture['state_dict'])
    return fixture, layer.eval()


@pytest.mark.parametrize('size', [(14, 14), (12, 20)])
def test_reproduces_reference_layer(size):
    fixture, layer = reference_layer()
    name = f'{size[0]}x{size[1]}'
    tokens = fixture['inputs'][f'x_{name}']
    with torch.no_grad():
        out = layer(tokens.reshape(tokens.shape[0], *size, -1))
    expected = fixture['outputs'][f'out_{name}']
    diff = (out.flatten(1, 2) - expected).abs().max().item()
    assert diff <= 1e-5, diff


@pytest.mark.parametrize('size', [(1, 1), (7, 1), (13, 21), (33, 16)])
def test_any_size(size):
    layer = AFNO2d(32, num_blocks=4)
    x = torch.randn(2, *size, 32)
    assert layer(x).shape == x.shape


def test_kept_modes_follow_the_frequency_grid():
    rows, cols = kept_mode_indices(12, 20, 0.5)
    # |k| <= 3 of frequency indices 0..5, -6..-1
    assert rows.tolist() == [0, 1, 2, 3, 9, 10, 11]
    assert cols == 6  # columns 0..5 of 11
    for size in [(14, 14), (13, 7), (1, 1)]:
        rows, cols = kept_mode_indices(*size, 1.0)
        assert rows.tolist() == list(range(size[0]))
        assert cols == size[1] // 2 + 1
    rows, cols = kept_mode_indices(5, 5, 0.01)
    assert rows.tolist() == [0] and cols == 1


def test_truncation_zeroes_exactly_the_dropped_modes():
    torch.manual_seed(0)
    layer = AFNO2d(16, num_blocks=2, hard_thresholding_fraction=0.5,
                   sparsity_threshold=0.)
    x = torch.randn(1, 12, 20, 16)
    out_spectrum = torch.fft.rfft2(layer(x) - x, dim=(1, 2), norm='ortho')
    rows, cols = kept_mode_indices(12, 20, 0.5)
    mask = torch.zeros(12, 11, dtype=torch.bool)
    mask[rows, :cols] = True
    energy = out_spectrum.abs().sum((0, 3))
    assert energy[~mask].max() < 1e-5
    assert (energy[mask] > 1e-3).all()
    # the kept modes equal the untruncated layer's there
    full = AFNO2d(16, num_blocks=2, sparsity_threshold=0.)
    full.load_state_dict(layer.state_dict())
    full_spectrum = torch.fft.rfft2(full(x) - x, dim=(1, 2), norm='ortho')
    assert torch.allclose(out_spectrum[:, mask], full_spectrum[:, mask],
                          atol=1e-5)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_inputs(dtype):
    layer = AFNO2d(16, num_blocks=2)
    x = torch.randn(2, 9, 7, 16)
    out = layer(x.to(dtype))
    assert out.dtype == dtype
    assert torch.allclose(out.float(), layer(x), atol=5e-2)


def test_gradients_reach_weights():
    layer = AFNO2d(16, num_blocks=2, hard_thresholding_fraction=0.5)
    layer(torch.randn(2, 10, 12, 16)).square().sum().backward()
    for param in layer.parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0


def test_bad_arguments():
    with pytest.raises(ValueError, match='multiple of num_blocks'):
        AFNO2d(30, num_blocks=4)
    with pytest.raises(ValueError, match='hard_thresholding_fraction'):
        AFNO2d(32, hard_thresholding_fraction=0)
    with pytest.raises(ValueError, match=r'\(B, H, W, 32\)'):
        AFNO2d(32, num_blocks=4)(torch.randn(1, 16, 8, 8))
