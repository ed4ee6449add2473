_base_ = './mask-rcnn_gfnet-h-ti_fpn_1x_coco.py'

# isotropic: the simple feature pyramid gives strides 4-32 with channels
# C/4, C/2, C, C
model = dict(
    backbone=dict(
        type='mmspectral.GFNet',
        arch='xs',
        drop_path_rate=0.1,
        init_cfg=dict(checkpoint='checkpoints/gfnet-xs_in1k.pth')),
    neck=dict(in_channels=[96, 192, 384, 384]))
