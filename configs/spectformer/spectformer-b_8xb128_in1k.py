_base_ = './spectformer-xs_8xb128_in1k.py'

model = dict(
    backbone=dict(arch='b', drop_path_rate=0.25),
    head=dict(in_channels=512))
