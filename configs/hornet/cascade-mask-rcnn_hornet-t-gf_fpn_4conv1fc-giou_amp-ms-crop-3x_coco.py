# HorNet-T (GF), Cascade Mask R-CNN 3x on COCO: published 52.4 box AP / 45.6
# mask AP (ImageNet-1k pretraining), from the official
# object_detection/configs/hornet/
# cascade_mask_rcnn_hornet_tiny_gf_3x_coco_in1k.py.
_base_ = './cascade-mask-rcnn_hornet-t_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py'  # noqa

# the GF filters stored at 224 (14x8 / 7x4), as the official config
model = dict(
    backbone=dict(
        arch='t-gf',
        init_cfg=dict(checkpoint='checkpoints/hornet-t-gf_in1k.pth')))
