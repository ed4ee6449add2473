# Mask R-CNN + FPN with the ViT-style AFNO-Ti (simple feature pyramid) on
# COCO, Swin-T's mmdet 1x recipe. No official AFNO ImageNet weights exist:
# train them with configs/afno/afno-ti_8xb128_in1k.py and save the result as
# the checkpoint below (or set init_cfg=None to train from scratch).
_base_ = '../gfnet/mask-rcnn_gfnet-h-ti_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmspectral.AFNO',
        arch='ti',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/afno-ti_in1k.pth',
            prefix='backbone.')),
    neck=dict(in_channels=[64, 128, 256, 256]))
