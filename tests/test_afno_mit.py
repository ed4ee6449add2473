"""AFNO inside SegFormer's MiT encoder."""
import torch

from mmspectral.models import AFNOMiT
from backbone_cases import AFNO_MIT


def test_loads_every_remaining_weight_of_an_mmseg_mit(tmp_path):
    from mmseg.models.backbones import MixVisionTransformer
    _, arch = AFNO_MIT
    # mmseg's MiT: a base width times the heads per stage
    base = arch['embed_dims'][0] // arch['num_blocks'][0]
    mit = MixVisionTransformer(
        embed_dims=base, num_layers=arch['depths'],
        num_heads=arch['num_blocks'])
    ckpt = tmp_path / 'mit.pth'
    torch.save({'state_dict': mit.state_dict()}, ckpt)
    model = AFNOMiT(arch, init_cfg=dict(type='Pretrained',
                                        checkpoint=str(ckpt)))
    model.init_weights()
    own = model.state_dict()
    shared = [k for k in mit.state_dict() if k in own]
    assert shared, 'no weight in common'
    for key in shared:
        assert torch.equal(own[key], mit.state_dict()[key]), key
    # every MiT weight except attention has a place, and only AFNO is new
    assert {k for k in mit.state_dict() if k not in own} == {
        k for k in mit.state_dict() if '.attn.' in k}
    assert all('.filter.' in k for k in own if k not in mit.state_dict())


def test_zoo_matches_mmseg_mit():
    """The zoo is mmseg's MiT-B0..B5: stage widths embed_dims * num_heads,
    AFNO blocks where MiT has heads."""
    from mmseg.models.backbones import MixVisionTransformer
    mit_b0 = MixVisionTransformer(embed_dims=32, num_heads=[1, 2, 5, 8],
                                  num_layers=[2, 2, 2, 2])
    widths = [stage[0].projection.out_channels for stage in mit_b0.layers]
    assert AFNOMiT('b0').embed_dims == widths == [32, 64, 160, 256]
    assert AFNOMiT('b3').embed_dims == [64, 128, 320, 512]
    assert [len(stage[1]) for stage in AFNOMiT('b3').layers] == [3, 4, 18, 3]
    assert [stage[1][0].filter.num_blocks
            for stage in AFNOMiT('b3').layers] == [1, 2, 5, 8]


def test_mode_truncation_reaches_every_layer():
    model = AFNOMiT('b0', hard_thresholding_fraction=0.5)
    fractions = {m.hard_thresholding_fraction for m in model.modules()
                 if hasattr(m, 'hard_thresholding_fraction')}
    assert fractions == {0.5}
    out = model(torch.randn(1, 3, 96, 160))
    assert [o.shape[-2:] for o in out] == [(24, 40), (12, 20), (6, 10),
                                           (3, 5)]
