_base_ = './gfnet-h-ti_8xb128_in1k.py'

# isotropic: the backbone's output is its normed stride-16 map
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmspectral.GFNet',
        arch='ti',
        drop_path_rate=0.1),
    head=dict(in_channels=256))
