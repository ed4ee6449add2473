_base_ = './gfnet-h-ti_8xb128_in1k.py'

# isotropic: the stride-16 level of the simple pyramid is the normed output
model = dict(
    backbone=dict(
        type='mmspectral.GFNet',
        arch='ti',
        out_indices=(2, ),
        drop_path_rate=0.1),
    head=dict(in_channels=256))
