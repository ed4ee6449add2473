_base_ = './gfnet-ti_8xb128_in1k.py'

model = dict(
    backbone=dict(
        type='mmspectral.GFNet', arch='s', drop_path_rate=0.15),
    head=dict(in_channels=384))
