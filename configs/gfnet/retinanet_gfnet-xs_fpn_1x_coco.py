_base_ = './retinanet_gfnet-h-ti_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        type='mmspectral.GFNet',
        arch='xs',
        drop_path_rate=0.1,
        init_cfg=dict(checkpoint='checkpoints/gfnet-xs_in1k.pth')),
    neck=dict(in_channels=[192, 384, 384]))
