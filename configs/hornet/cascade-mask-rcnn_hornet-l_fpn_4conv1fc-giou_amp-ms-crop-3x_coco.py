# HorNet-L (7x7), Cascade Mask R-CNN 3x on COCO: published 55.4 box AP / 48.0
# mask AP (ImageNet-22k pretraining), from the official
# object_detection/configs/hornet/
# cascade_mask_rcnn_hornet_large_7x7_3x_coco_in22k.py.
_base_ = './cascade-mask-rcnn_hornet-t_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py'  # noqa

model = dict(
    backbone=dict(
        arch='l',
        drop_path_rate=0.7,
        init_cfg=dict(checkpoint='checkpoints/hornet-l_in22k.pth')),
    neck=dict(in_channels=[192, 384, 768, 1536]))
optim_wrapper = dict(optimizer=dict(lr=0.0001))
