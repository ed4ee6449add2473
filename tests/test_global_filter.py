import pytest
import torch
import torch.nn.functional as F

from mmspectral.models.layers import GlobalFilter, resize_filter


def circular_conv_reference(x, weight):
    """Explicit depthwise circular convolution with the spatial kernel
    that the half-spectrum weight ``(h, w, C)`` defines."""
    _, h, w, _ = x.shape
    kernel = torch.fft.irfft2(weight, s=(h, w), dim=(0, 1))  # (h, w, C)
    out = torch.zeros_like(x)
    for dy in range(h):
        for dx in range(w):
            out += kernel[dy, dx] * torch.roll(x, (dy, dx), dims=(1, 2))
    return out


@pytest.mark.parametrize('size', [(6, 5), (7, 8), (4, 4), (1, 3)])
def test_equals_depthwise_circular_convolution(size):
    layer = GlobalFilter(3, size, init_std=1.0)
    x = torch.randn(2, *size, 3)
    expected = circular_conv_reference(
        x.double(), torch.view_as_complex(layer.complex_weight.double()))
    assert torch.allclose(layer(x).double(), expected, atol=1e-5)


def test_channels_first_matches_channels_last():
    last = GlobalFilter(4, (6, 10), channels_last=True)
    first = GlobalFilter(4, (6, 10), channels_last=False)
    first.load_state_dict(last.state_dict())
    x = torch.randn(2, 9, 7, 4)  # another size: resized filter in both
    out_first = first(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    assert torch.allclose(last(x), out_first, atol=1e-6)


@pytest.mark.parametrize('mode', ['frequency', 'bilinear'])
@pytest.mark.parametrize('size', [(1, 1), (1, 7), (7, 1), (13, 21), (64, 33),
                                  (14, 14), (15, 14)])
def test_any_size_and_identity_filter(mode, size):
    layer = GlobalFilter(5, 14, resize_mode=mode)
    with torch.no_grad():
        layer.complex_weight.zero_()
        layer.complex_weight[..., 0] = 1.0  # all-pass filter
    x = torch.randn(2, *size, 5)
    out = layer(x)
    assert out.shape == x.shape
    # a constant spectrum stays constant under either resize: identity
    assert torch.allclose(out, x, atol=1e-5)


def test_bilinear_mode_is_official_hornet_interpolation():
    weight = torch.randn(14, 8, 6, 2)
    ours = resize_filter(weight, (14, 14), (16, 20), 'bilinear')
    # official: (C, h, w, 2) weight, real/imag as a batch of two
    planes = weight.permute(3, 2, 0, 1)
    official = F.interpolate(
        planes, size=(16, 11), mode='bilinear', align_corners=True)
    assert torch.allclose(ours, official.permute(2, 3, 1, 0), atol=1e-6)


def gaussian_lowpass(size, sigma=0.12):
    h, w = size
    fy = torch.fft.fftfreq(h, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(w, dtype=torch.float64)[None, :]
    return torch.exp(-(fy**2 + fx**2) / (2 * sigma**2))


def test_frequency_mode_is_more_accurate_on_a_smooth_spectrum():
    stored = gaussian_lowpass((14, 14))  # (14, 8)
    weight = torch.stack([stored, torch.zeros_like(stored)], -1)[:, :, None]
    truth = gaussian_lowpass((56, 56))  # (56, 29)
    max_err, rms_err = {}, {}
    for mode in ('frequency', 'bilinear'):
        resized = resize_filter(weight, (14, 14), (56, 56), mode)
        assert resized.shape == (56, 29, 1, 2)
        diff = resized[:, :, 0, 0] - truth
        max_err[mode] = diff.abs().max().item()
        rms_err[mode] = diff.square().mean().sqrt().item()
    # measured: frequency 0.071 max / 0.0091 rms, bilinear 0.26 / 0.045
    assert rms_err['frequency'] < 0.012
    assert rms_err['frequency'] < rms_err['bilinear'] / 4, rms_err
    assert max_err['frequency'] < max_err['bilinear'] / 3, max_err


def test_frequency_mode_wraps_negative_frequencies():
    # a spectrum that is large only near the most negative rows must stay
    # there: row k and row -k are neighbours of 0, not of each other's ends
    stored = gaussian_lowpass((8, 8))
    weight = torch.stack([stored, torch.zeros_like(stored)], -1)[:, :, None]
    resized = resize_filter(weight, (8, 8), (32, 32), 'frequency')[..., 0, 0]
    assert torch.allclose(resized[1], resized[-1], atol=1e-12)
    assert resized[0, 0] == resized.max()


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_inputs_run_in_float32(dtype):
    layer = GlobalFilter(8, 6)
    x = torch.randn(2, 9, 7, 8)
    out = layer(x.to(dtype))
    assert out.dtype == dtype
    assert torch.allclose(out.float(), layer(x), atol=5e-2)


def test_autocast_cpu():
    """'fft' computes in float32 under autocast and returns the input
    dtype, as before the engine; the matrix forms compute in bf16 and
    return it (tests/test_spectral_engine.py)."""
    layer = GlobalFilter(8, 6, impl='fft')
    x = torch.randn(2, 6, 6, 8)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = layer(x)
    assert out.dtype == torch.float32
    assert torch.allclose(out, layer(x))


def test_train_mode_gradients_reach_stored_filter():
    layer = GlobalFilter(4, 8).train()
    for size in [(10, 12), (10, 12), (8, 8)]:
        layer.zero_grad()
        layer(torch.randn(2, *size, 4)).square().sum().backward()
        grad = layer.complex_weight.grad
        assert grad is not None and grad.abs().sum() > 0


def test_load_resizes_filter_of_other_native_size():
    small = GlobalFilter(4, 14)
    large = GlobalFilter(4, 24)
    large.load_state_dict(small.state_dict())
    assert large.complex_weight.shape == (24, 13, 4, 2)
    expected = resize_filter(small.complex_weight.detach(), (14, 14),
                             (24, 24))
    assert torch.allclose(large.complex_weight, expected)


def test_bad_inputs():
    with pytest.raises(ValueError, match='resize_mode'):
        GlobalFilter(4, 8, resize_mode='nearest')
    with pytest.raises(ValueError, match='C=4'):
        GlobalFilter(4, 8)(torch.randn(1, 8, 8, 3))
