"""FLOP counting with the spectral operators: hand-computed cases."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmspectral.models.layers import AFNO2d, GlobalFilter
from mmspectral.utils.flops import count_flops, fft2_flops


def test_fft_formula_by_hand():
    # 14x14 map, 2 images x 8 channels: N = 196, ceil(log2 196) = 8
    assert fft2_flops((2, 14, 14, 8), (1, 2)) == 196 * 16 * 8
    assert fft2_flops((2, 8, 14, 14), (-2, -1)) == 196 * 16 * 8
    assert fft2_flops((1, 1, 1, 5), (1, 2)) == 0  # a 1x1 map needs no FFT


def test_global_filter_counts_both_transforms_and_the_product():
    # rfft2 + irfft2 on a 14x14 map with 2*8 signals, and one complex product
    # per frequency of the 14 x 8 half spectrum
    expected = 2 * 196 * 16 * 8 + 2 * 14 * 8 * 8
    for channels_last, shape in ((True, (2, 14, 14, 8)),
                                 (False, (2, 8, 14, 14))):
        layer = GlobalFilter(8, 14, channels_last=channels_last)
        assert count_flops(layer, (torch.randn(shape), )) == expected


def test_resizing_is_not_counted_as_per_image_work():
    # odd, non-square map: N = 117, ceil(log2 117) = 7; half spectrum 9 x 7
    layer = GlobalFilter(8, 14)
    expected = 2 * 117 * 8 * 7 + 9 * 7 * 8
    assert count_flops(layer, (torch.randn(1, 9, 13, 8), )) == expected


def test_afno_counts_complex_einsums_four_times():
    # 8x8 map, 16 channels in 4 blocks of 4: the half spectrum has 8 x 5
    # frequencies, each through two 4x4 complex matrices per block
    layer = AFNO2d(16, num_blocks=4)
    fft = 2 * 64 * 16 * 6
    mlp = 40 * 4 * (4 * 4) * 2 * 4
    assert count_flops(layer, (torch.randn(1, 8, 8, 16), )) == fft + mlp


def test_fused_attention_counts_its_two_products():

    class Attention(nn.Module):

        def forward(self, q, k, v):
            return F.scaled_dot_product_attention(q, k, v)

    q, k, v = torch.randn(2, 3, 10, 4), torch.randn(2, 3, 6, 4), \
        torch.randn(2, 3, 6, 5)
    assert count_flops(Attention(), (q, k, v)) == 2 * 3 * 10 * 6 * (4 + 5)


def test_real_products_stay_uncounted_as_in_fvcore():

    class Scale(nn.Module):

        def forward(self, x):
            return x * 2.0 + torch.fft.rfft2(x).abs().sum()

    flops = count_flops(Scale(), (torch.randn(1, 4, 8, 8), ))
    assert flops == 64 * 4 * math.ceil(math.log2(64))
