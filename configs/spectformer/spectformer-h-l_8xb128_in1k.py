_base_ = './spectformer-h-s_8xb128_in1k.py'

model = dict(
    backbone=dict(arch='h-l', drop_path_rate=0.4),
    head=dict(in_channels=512))
