_base_ = './spectformer-xs_8xb128_in1k.py'

model = dict(
    backbone=dict(arch='t', drop_path_rate=0.1),
    head=dict(in_channels=256))
