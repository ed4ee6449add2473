_base_ = './spectformer-h-s_8xb128_in1k.py'

model = dict(
    backbone=dict(arch='h-b', drop_path_rate=0.3),
    head=dict(in_channels=512))
