_base_ = './afno-ti_8xb128_in1k.py'

model = dict(backbone=dict(arch='s'), head=dict(in_channels=384))
