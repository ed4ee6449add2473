_base_ = './gfnet-ti_8xb128_in1k.py'

model = dict(
    backbone=dict(
        type='mmspectral.GFNet', arch='b', drop_path_rate=0.25),
    head=dict(in_channels=512))
