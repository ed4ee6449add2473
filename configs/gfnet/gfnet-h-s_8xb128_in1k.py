_base_ = './gfnet-h-ti_8xb128_in1k.py'

model = dict(
    backbone=dict(arch='h-s', drop_path_rate=0.2),
    head=dict(in_channels=768))
