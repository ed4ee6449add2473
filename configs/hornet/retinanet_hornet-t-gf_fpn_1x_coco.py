# RetinaNet + FPN with HorNet-T-GF on COCO, 1x (PVTv2's mmdet recipe).
_base_ = '../gfnet/retinanet_gfnet-h-ti_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmspectral.HorNet',
        arch='t-gf',
        pretrain_img_size=384,
        out_indices=(1, 2, 3),
        gap_before_final_norm=False,
        drop_path_rate=0.2,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/hornet-t-gf_in1k.pth',
            prefix='backbone.')),
    neck=dict(in_channels=[128, 256, 512]))
