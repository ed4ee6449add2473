# Mask R-CNN + FPN with the ViT-style AFNO-Ti on COCO, Swin-T's mmdet 1x
# recipe. No official AFNO ImageNet weights exist: train them with
# configs/afno/afno-ti_8xb128_in1k.py and save the result as the checkpoint
# below (or set init_cfg=None to train from scratch).
_base_ = '../gfnet/mask-rcnn_gfnet-h-ti_fpn_1x_coco.py'

# isotropic: the backbone's normed stride-16 map goes through the simple
# feature pyramid (strides 4-32, channels C/4, C/2, C, C), then the FPN
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmspectral.AFNO',
        arch='ti',
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/afno-ti_in1k.pth',
            prefix='backbone.')),
    neck=[
        dict(type='mmspectral.SimpleFPN', in_channels=256),
        dict(
            type='FPN',
            in_channels=[64, 128, 256, 256],
            out_channels=256,
            num_outs=5),
    ])
