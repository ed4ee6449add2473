# Mask R-CNN + FPN with vanilla SpectFormer-XS (simple feature pyramid), 1x.
_base_ = '../gfnet/mask-rcnn_gfnet-h-ti_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmspectral.SpectFormer',
        arch='xs',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/spectformer-xs_in1k.pth',
            prefix='backbone.')),
    neck=dict(in_channels=[96, 192, 384, 384]))
