# RetinaNet + FPN with the ViT-style AFNO-Ti on COCO, PVTv2's mmdet recipe.
# See mask-rcnn_afno-ti_fpn_1x_coco.py for the checkpoint.
_base_ = '../gfnet/retinanet_gfnet-h-ti_fpn_1x_coco.py'

# isotropic: the backbone's normed stride-16 map goes through the simple
# feature pyramid, then the FPN; stride 4 is not used by RetinaNet's FPN:
# leave it out, so that no parameter goes without a gradient
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
        dict(
            type='mmspectral.SimpleFPN',
            in_channels=256,
            out_indices=(1, 2, 3)),
        dict(
            type='FPN',
            in_channels=[128, 256, 256],
            out_channels=256,
            start_level=0,
            add_extra_convs='on_input',
            num_outs=5),
    ])
