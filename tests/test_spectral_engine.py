"""The spectral transform engine: every implementation computes what
``torch.fft`` computes (values and gradients), the matrix forms run in the
autocast dtype, ``'auto'`` never picks a form that is not clearly faster,
compiled graphs hold no complex tensors, and the backbones take the choice
as a config argument."""
import pytest
import torch
import torch._dynamo as dynamo

from mmspectral.models.backbones import GFNetH, HorNet
from mmspectral.models.layers import (AFNO2d, GlobalFilter, SpectralLayer,
                                      SpectralTimings, set_spectral_impl)
from mmspectral.utils import relative_error

MATRIX_IMPLS = ['dft', 'factored']
# odd, prime, composite (factored into two products) and non-square maps
SIZES = [(7, 5), (13, 24), (30, 18), (1, 9)]


def filter_pair(impl, channels_last=True, spatial_size=(14, 8)):
    torch.manual_seed(0)
    reference = GlobalFilter(6, spatial_size, channels_last=channels_last,
                             impl='fft')
    other = GlobalFilter(6, spatial_size, channels_last=channels_last,
                         impl=impl)
    other.load_state_dict(reference.state_dict())
    return reference, other


def layer_input(size, channels_last=True, batch=2):
    shape = (batch, *size, 6) if channels_last else (batch, 6, *size)
    return torch.randn(shape)


@pytest.mark.parametrize('channels_last', [True, False])
@pytest.mark.parametrize('impl', MATRIX_IMPLS)
def test_global_filter_matches_fft_in_float32(impl, channels_last):
    reference, other = filter_pair(impl, channels_last)
    for size in SIZES:
        x = layer_input(size, channels_last)
        with torch.no_grad():
            expected, actual = reference(x), other(x)
        assert actual.dtype == torch.float32
        assert (actual - expected).abs().max() < 1e-5, size


@pytest.mark.parametrize('impl', MATRIX_IMPLS)
def test_global_filter_gradients_match_fft(impl):
    reference, other = filter_pair(impl, spatial_size=(9, 12))
    for size in [(9, 12), (13, 24)]:  # stored size, and a resized filter
        x = layer_input(size)
        grads = []
        for layer in (reference, other):
            layer.zero_grad()
            xi = x.clone().requires_grad_()
            out = layer(xi)
            (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum() \
                .backward()
            grads.append((xi.grad, layer.complex_weight.grad))
        (gx_ref, gw_ref), (gx, gw) = grads
        assert (gx - gx_ref).abs().max() < 1e-5, size
        assert relative_error(gw, gw_ref) < 1e-5, size


@pytest.mark.parametrize('impl', MATRIX_IMPLS)
@pytest.mark.parametrize('fraction', [1.0, 0.5])
def test_afno_matches_fft_values_and_gradients(impl, fraction):
    torch.manual_seed(0)
    reference = AFNO2d(16, num_blocks=4,
                       hard_thresholding_fraction=fraction, impl='fft')
    other = AFNO2d(16, num_blocks=4, hard_thresholding_fraction=fraction,
                   impl=impl)
    other.load_state_dict(reference.state_dict())
    for size in [(7, 5), (12, 20)]:
        x = torch.randn(2, *size, 16)
        outs, grads = [], []
        for layer in (reference, other):
            layer.zero_grad()
            xi = x.clone().requires_grad_()
            out = layer(xi)
            out.pow(2).sum().backward()
            outs.append(out.detach())
            grads.append(xi.grad)
        assert (outs[1] - outs[0]).abs().max() < 1e-5, size
        assert relative_error(grads[1], grads[0]) < 1e-5, size


@pytest.mark.parametrize('impl', MATRIX_IMPLS)
def test_matrix_forms_compute_in_the_autocast_dtype(impl):
    """Under bf16 autocast the matrix forms return bf16 with a bf16-level
    error against the float32 reference; 'fft' stays float32 inside."""
    reference, other = filter_pair(impl)
    x = layer_input((24, 30))
    with torch.no_grad():
        expected = reference(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            actual = other(x)
    assert actual.dtype == torch.bfloat16
    assert 1e-4 < relative_error(actual, expected) < 2e-2


def test_auto_takes_a_matrix_form_only_when_clearly_faster():
    timings = SpectralTimings(margin=0.05)
    timings.record('k', 'fft', 1.0)
    timings.record('k', 'dft', 0.97)  # within the margin: noise
    assert timings.best('k') == 'fft'
    timings.record('k', 'factored', 0.5)
    assert timings.best('k') == 'factored'
    assert timings.best('unseen') is None
    runs = []
    choice = timings.choose('new', ['fft', 'dft'],
                            lambda impl: runs.append(impl),
                            torch.device('cpu'))
    assert choice in ('fft', 'dft') and set(runs) == {'fft', 'dft'}
    assert len(runs) == 8  # one warm-up and three timed runs each
    timings.choose('new', ['fft', 'dft'], runs.append, torch.device('cpu'))
    assert len(runs) == 8  # the choice is kept


def test_auto_matches_fft():
    reference, auto = filter_pair('auto', spatial_size=(64, 64))
    x = layer_input((64, 64), batch=4)  # large enough to be timed
    with torch.no_grad():
        assert (auto(x) - reference(x)).abs().max() < 1e-5


@pytest.mark.parametrize('impl', MATRIX_IMPLS)
def test_compiled_graph_holds_no_complex_tensor(impl):
    dynamo.reset()
    layer = GlobalFilter(6, (10, 12), impl=impl).train()
    graphs = []

    def capture(graph_module, example_inputs):
        graphs.append(graph_module)
        return graph_module.forward

    compiled = torch.compile(layer, backend=capture)
    x = torch.randn(2, 10, 12, 6, requires_grad=True)
    out = compiled(x)
    out.sum().backward()
    assert torch.allclose(out, layer(x), atol=1e-5)
    assert len(graphs) == 1
    values = [node.meta.get('example_value', node.meta.get('val'))
              for node in graphs[0].graph.nodes]
    dtypes = {v.dtype for v in values if isinstance(v, torch.Tensor)}
    assert dtypes and not any(d.is_complex for d in dtypes), dtypes


def test_backbones_take_spectral_impl():
    model = GFNetH('h-ti', spectral_impl='factored')
    layers = [m for m in model.modules() if isinstance(m, SpectralLayer)]
    assert layers and all(m.impl == 'factored' for m in layers)
    reference = set_spectral_impl(GFNetH('h-ti', spectral_impl='fft'),
                                  'fft').eval()
    model.load_state_dict(reference.state_dict())
    x = torch.randn(1, 3, 72, 88)
    with torch.no_grad():
        for out, expected in zip(model.eval()(x), reference(x)):
            assert relative_error(out, expected) < 1e-5
    with pytest.raises(ValueError, match='spectral impl must be one of'):
        GFNetH('h-ti', spectral_impl='cufft')
    with pytest.raises(ValueError, match='no spectral layers'):
        HorNet('t', spectral_impl='dft')
    assert all(m.impl == 'auto' for m in HorNet('t-gf').modules()
               if isinstance(m, SpectralLayer))


def test_auto_trains_on_fft():
    """'auto' chooses by forward timings: where autograd records a call
    it runs 'fft' and times nothing; inference in a matrix dtype is timed
    and chosen."""
    from mmspectral.models.layers import TIMINGS
    layer = GlobalFilter(6, (64, 72), impl='auto')
    x = layer_input((64, 72), batch=4)  # a key no other test times
    before = set(TIMINGS.times)
    assert layer.call_impl(x) == 'fft'  # its weight needs gradients
    layer(x).sum().backward()
    assert set(TIMINGS.times) == before
    with torch.no_grad():
        assert layer.call_impl(x) == 'auto'
        layer(x)  # float32 on a CPU: fft, measured once for all
        assert set(TIMINGS.times) == before
        with torch.autocast('cpu', dtype=torch.bfloat16):
            layer(x)
    assert len(set(TIMINGS.times) - before) == 1
