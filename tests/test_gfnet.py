import pytest
import torch

from mmspectral.models import GFNet, GFNetH, SimpleFPN
from backbone_cases import ISOTROPIC, PYRAMID

TINY_PYRAMID = PYRAMID[1]
TINY_ISOTROPIC = ISOTROPIC['gfnet'][1]

# published ImageNet-1k parameter counts in millions (1000-class head); the
# papers round (GFNet-Ti has 7.51M)
PUBLISHED_PARAMS = {'ti': 7, 'xs': 16, 's': 25, 'b': 43,
                    'h-ti': 15, 'h-s': 32, 'h-b': 54}
# the architectures as the paper and the official code describe them
ISOTROPIC_ARCHS = {'ti': (256, 12), 'xs': (384, 12), 's': (384, 19),
                   'b': (512, 19)}
PYRAMID_ARCHS = {'h-ti': ([64, 128, 256, 512], [3, 3, 10, 3]),
                 'h-s': ([96, 192, 384, 768], [3, 3, 10, 3]),
                 'h-b': ([96, 192, 384, 768], [3, 3, 27, 3])}


def block_params(dims: int, filter_hw, layer_scale: bool) -> int:
    """LN, global filter (h, w, C, 2), LN, MLP (ratio 4), layer scale."""
    h, w = filter_hw
    mlp = dims * 4 * dims + 4 * dims + 4 * dims * dims + dims
    return 2 * dims + h * w * dims * 2 + 2 * dims + mlp + layer_scale * dims


def architecture_params(arch: str) -> int:
    """The parameter count of the published architecture at 224x224, with
    a 1000-class linear head, counted layer by layer."""
    if arch in ISOTROPIC_ARCHS:
        dims, depth = ISOTROPIC_ARCHS[arch]
        stem = 3 * 16 * 16 * dims + dims + 14 * 14 * dims  # patch, pos_embed
        blocks = depth * block_params(dims, (14, 8), False)
        return stem + blocks + 2 * dims + dims * 1000 + 1000
    dims, depths = PYRAMID_ARCHS[arch]
    total = 3 * 4 * 4 * dims[0] + dims[0] + 56 * 56 * dims[0]
    for i, (c, depth) in enumerate(zip(dims, depths)):
        if i:  # 2x2 stride-2 conv, no norm
            total += dims[i - 1] * 2 * 2 * c + c
        size = 56 // 2**i
        total += depth * block_params(c, (size, size // 2 + 1), True)
    return total + 2 * dims[-1] + dims[-1] * 1000 + 1000


def count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('arch', sorted(PUBLISHED_PARAMS))
def test_parameter_counts_match_the_published_architecture(arch):
    model = GFNetH(arch, out_indices=(3, )) if arch.startswith('h-') else \
        GFNet(arch)
    total = count(model) + model.embed_dims[-1] * 1000 + 1000  # linear head
    assert total == architecture_params(arch)
    assert abs(total / 1e6 - PUBLISHED_PARAMS[arch]) <= 0.52


def test_pyramid_channels_and_strides():
    model = GFNetH(TINY_PYRAMID).eval()
    outs = model(torch.randn(2, 3, 97, 130))
    assert model.out_channels == [8, 16, 24, 32]
    assert [o.shape[-2:] for o in outs] == [(25, 33), (13, 17), (7, 9), (4, 5)]


def test_isotropic_simple_pyramid_channels():
    backbone = GFNet(TINY_ISOTROPIC)
    assert backbone.out_channels == [32]
    assert SimpleFPN(*backbone.out_channels).out_channels == [8, 16, 32, 32]


def test_filter_sizes_follow_pretrain_img_size():
    model = GFNetH(TINY_PYRAMID, pretrain_img_size=384)
    assert [s[0].filter.complex_weight.shape[:2] for s in model.stages] == [
        (96, 49), (48, 25), (24, 13), (12, 7)]


def test_pyramid_arch_needs_four_stages():
    with pytest.raises(ValueError, match=r'four embed_dims'):
        GFNetH(dict(embed_dims=[8, 16], depths=[1, 1], mlp_ratio=4))
