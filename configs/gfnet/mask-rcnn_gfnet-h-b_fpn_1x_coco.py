_base_ = './mask-rcnn_gfnet-h-ti_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        arch='h-b',
        drop_path_rate=0.4,
        init_cfg=dict(checkpoint='checkpoints/gfnet-h-b_in1k.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
