# RetinaNet + FPN with the ViT-style AFNO-Ti on COCO, PVTv2's mmdet recipe.
# See mask-rcnn_afno-ti_fpn_1x_coco.py for the checkpoint.
_base_ = '../gfnet/retinanet_gfnet-h-ti_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmspectral.AFNO',
        arch='ti',
        out_indices=(1, 2, 3),
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/afno-ti_in1k.pth',
            prefix='backbone.')),
    neck=dict(in_channels=[128, 256, 256]))
