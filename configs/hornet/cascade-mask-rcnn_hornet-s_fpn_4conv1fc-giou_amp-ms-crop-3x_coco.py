# HorNet-S (7x7), Cascade Mask R-CNN 3x on COCO: published 52.7 box AP / 45.6
# mask AP (ImageNet-1k pretraining), from the official
# object_detection/configs/hornet/
# cascade_mask_rcnn_hornet_small_7x7_3x_coco_in1k.py.
_base_ = './cascade-mask-rcnn_hornet-t_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py'  # noqa

model = dict(
    backbone=dict(
        arch='s',
        drop_path_rate=0.6,
        init_cfg=dict(checkpoint='checkpoints/hornet-s_in1k.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
