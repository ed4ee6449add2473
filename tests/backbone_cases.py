"""Small archs of every family, for the tests of the shared backbone API."""
from mmspectral.models import (AFNO, AFNOMiT, GFNet, GFNetH, HorNet,
                               SpectFormer, SpectFormerH)

PYRAMID = (GFNetH, dict(embed_dims=[8, 16, 24, 32], depths=[1, 1, 2, 1],
                        mlp_ratio=2, layer_scale_init_value=1e-2))
ISOTROPIC = {
    'gfnet': (GFNet, dict(embed_dims=32, depths=4, mlp_ratio=2)),
    'afno': (AFNO, dict(embed_dims=32, depths=4, num_blocks=4, mlp_ratio=2)),
    'spectformer': (SpectFormer,
                    dict(embed_dims=32, depths=5, mlp_ratio=2, num_heads=2)),
}
AFNO_MIT = (AFNOMiT,
            dict(embed_dims=[8, 16, 16, 32], depths=[1, 1, 2, 1],
                 num_blocks=[1, 2, 2, 4]))
HORNET_GF = (HorNet,
             dict(base_dim=8, depths=[1, 1, 2, 1], orders=[2, 3, 4, 5],
                  global_filter_stages=(2, 3)))
SPECTFORMER_H = (SpectFormerH,
                 dict(embed_dims=[8, 16, 24, 32], depths=[1, 1, 2, 1],
                      num_heads=[1, 2, 3, 4], mlp_ratios=[2, 2, 2, 2],
                      stem_hidden_dim=8))
CASES = {
    'gfnet-pyramid': PYRAMID,
    'afno-mit': AFNO_MIT,
    'hornet-gf': HORNET_GF,
    'spectformer-h': SPECTFORMER_H,
    **ISOTROPIC
}


def build(case: str, **kwargs):
    """The case's backbone, initialised (unless it loads a checkpoint);
    every family with four dense outputs by default (HorNet's own default is
    mmpretrain's classification layout; the isotropic families return three
    inner blocks and the normed last one)."""
    cls, arch = CASES[case]
    if cls is HorNet:
        kwargs.setdefault('out_indices', (0, 1, 2, 3))
        kwargs.setdefault('gap_before_final_norm', False)
    if case in ISOTROPIC:
        kwargs.setdefault('out_indices', (0, 1, 2, -1))
    model = cls(arch, **kwargs)
    if (kwargs.get('init_cfg') or {}).get('type') != 'Pretrained':
        model.init_weights()
    return model
