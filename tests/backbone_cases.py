"""Small archs of every family, for the tests of the shared backbone API."""
from mmspectral.models import AFNO, AFNOMiT, GFNet

PYRAMID = (GFNet, dict(embed_dims=[8, 16, 24, 32], depths=[1, 1, 2, 1],
                       mlp_ratio=2, layer_scale_init_value=1e-2))
ISOTROPIC = {
    'gfnet': (GFNet, dict(embed_dims=32, depths=4, mlp_ratio=2)),
    'afno': (AFNO, dict(embed_dims=32, depths=4, num_blocks=4, mlp_ratio=2)),
}
AFNO_MIT = (AFNOMiT,
            dict(embed_dims=8, num_layers=[1, 1, 2, 1],
                 num_heads=[1, 2, 2, 4]))
CASES = {'gfnet-pyramid': PYRAMID, 'afno-mit': AFNO_MIT, **ISOTROPIC}


def build(case: str, **kwargs):
    cls, arch = CASES[case]
    return cls(arch, **kwargs)
