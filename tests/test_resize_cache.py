"""The eval-mode cache of resized filters and position embeddings: bounded
at any number of input sizes, never stale, and hit at a repeated size."""
import pytest
import torch

from mmspectral.models import GFNetH
from mmspectral.models.layers import GlobalFilter, PositionEmbedding
from mmspectral.models.layers import global_filter as gf_module


@pytest.fixture
def resize_calls(monkeypatch):
    calls = []
    real = gf_module.resize_filter

    def counting(*args, **kwargs):
        calls.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(gf_module, 'resize_filter', counting)
    return calls


def cached_bytes(model) -> int:
    return sum(cache.nbytes for cache in model.resize_caches())


@torch.no_grad()
def test_repeated_size_hits_and_new_sizes_evict_the_oldest(resize_calls):
    layer = GlobalFilter(4, 8).eval()
    assert layer.resize_cache.max_entries == 2
    run = lambda h, w: layer(torch.randn(1, h, w, 4))  # noqa: E731
    run(10, 12)
    run(10, 12)
    assert resize_calls == [(10, 12)]  # the second call was a hit
    run(11, 12)
    run(10, 12)  # still cached: two sizes fit
    run(12, 12)  # evicts (11, 12), the least recently used
    run(10, 12)
    run(11, 12)
    assert resize_calls == [(10, 12), (11, 12), (12, 12), (11, 12)]
    assert len(layer.resize_cache) == 2


@torch.no_grad()
def test_memory_is_flat_after_the_bound():
    model = GFNetH(arch=dict(embed_dims=[8, 8, 8, 8], depths=[1, 1, 1, 1],
                             mlp_ratio=1), resize_cache_size=3).eval()
    held = []
    for i in range(12):  # twelve distinct input sizes
        model(torch.randn(1, 3, 64 + 8 * i, 96))
        held.append(cached_bytes(model))
    assert held[2] > held[1] > held[0] > 0
    # three sizes are kept; later sizes are larger, so the bytes held grow
    # only as the kept sizes do, never by accumulating entries
    assert {len(cache) for cache in model.resize_caches()} == {3}
    three_largest = held[-1]
    model(torch.randn(1, 3, 64, 96))  # a small size replaces a large one
    assert cached_bytes(model) < three_largest


@torch.no_grad()
@pytest.mark.parametrize('edit', ['data_mul', 'data_swap', 'copy_',
                                  'load_state_dict'])
def test_no_stale_filter_after_any_weight_edit(edit):
    layer = GlobalFilter(4, 8).eval()
    x = torch.randn(1, 10, 12, 4)
    first = layer(x)
    weight = layer.complex_weight
    if edit == 'data_mul':  # what custom EMA code does: no version bump
        weight.data.mul_(2)
    elif edit == 'data_swap':
        weight.data = weight.data * 2
    elif edit == 'copy_':
        weight.copy_(weight * 2)
    else:
        layer.load_state_dict({'complex_weight': weight * 2})
    assert torch.allclose(layer(x), 2 * first, atol=1e-5)


@torch.no_grad()
def test_position_embedding_cache_is_bounded_and_fresh():
    pos = PositionEmbedding(4, 7).eval()
    pos.resize_cache.max_entries = 1
    x = torch.zeros(1, 9, 11, 4)
    first = pos(x)
    pos(torch.zeros(1, 8, 8, 4))
    assert len(pos.resize_cache) == 1
    pos.weight.data.add_(1.0)
    assert torch.allclose(pos(x), first + 1.0, atol=1e-5)


def test_nothing_is_cached_in_training_or_when_disabled(resize_calls):
    layer = GlobalFilter(4, 8)
    x = torch.randn(1, 10, 12, 4)
    layer(x)
    layer(x)
    assert len(resize_calls) == 2 and len(layer.resize_cache) == 0
    layer.eval()
    layer.resize_cache.max_entries = 0
    with torch.no_grad():
        layer(x)
        layer(x)
    assert len(resize_calls) == 4 and len(layer.resize_cache) == 0


def test_backbones_pass_the_bound_to_every_layer():
    model = GFNetH(arch=dict(embed_dims=[8, 8, 8, 8], depths=[1, 1, 1, 1],
                             mlp_ratio=1), resize_cache_size=5)
    assert {cache.max_entries for cache in model.resize_caches()} == {5}
    with pytest.raises(ValueError, match='cache size must be an int >= 0'):
        GFNetH('h-ti', resize_cache_size=-1)
