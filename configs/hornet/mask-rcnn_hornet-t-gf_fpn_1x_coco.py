# Mask R-CNN + FPN with HorNet-T-GF on COCO, 1x: the GFNet/Swin-T mmdet
# recipe with a HorNet backbone. The GF filters are stored at the official
# dense-prediction size (24x13, 12x7: pretrain_img_size=384); an ImageNet
# checkpoint's 14x8 / 7x4 filters are resized when loaded.
_base_ = '../gfnet/mask-rcnn_gfnet-h-ti_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmspectral.HorNet',
        arch='t-gf',
        pretrain_img_size=384,
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False,
        drop_path_rate=0.2,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/hornet-t-gf_in1k.pth',
            prefix='backbone.')),
    neck=dict(in_channels=[64, 128, 256, 512]))
