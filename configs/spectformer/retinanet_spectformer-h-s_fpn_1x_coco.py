# RetinaNet + FPN with hierarchical SpectFormer-H-S on COCO, 1x.
_base_ = '../gfnet/retinanet_gfnet-h-ti_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmspectral.SpectFormerH',
        arch='h-s',
        out_indices=(1, 2, 3),
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/spectformer-h-s_in1k.pth',
            prefix='backbone.')),
    neck=dict(in_channels=[128, 320, 448]))
