_base_ = './gfnet-h-ti_8xb128_in1k.py'

model = dict(
    backbone=dict(arch='h-b', drop_path_rate=0.4),
    head=dict(in_channels=768))
