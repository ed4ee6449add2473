# HorNet-L (GF), Cascade Mask R-CNN 3x on COCO: published 56.0 box AP / 48.6
# mask AP (ImageNet-22k pretraining), from the official
# object_detection/configs/hornet/
# cascade_mask_rcnn_hornet_large_gf_3x_coco_in22k.py.
_base_ = './cascade-mask-rcnn_hornet-l_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py'  # noqa

# the GF filters stored at 384 (24x13 / 12x7), as the official config
model = dict(
    backbone=dict(
        arch='l-gf',
        pretrain_img_size=384,
        init_cfg=dict(checkpoint='checkpoints/hornet-l-gf_in22k.pth')))
