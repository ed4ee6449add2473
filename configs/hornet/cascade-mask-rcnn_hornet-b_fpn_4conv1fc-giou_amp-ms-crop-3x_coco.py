# HorNet-B (7x7), Cascade Mask R-CNN 3x on COCO: published 53.3 box AP / 46.1
# mask AP (ImageNet-1k pretraining), from the official
# object_detection/configs/hornet/
# cascade_mask_rcnn_hornet_base_7x7_3x_coco_in1k.py.
_base_ = './cascade-mask-rcnn_hornet-t_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py'  # noqa

model = dict(
    backbone=dict(
        arch='b',
        drop_path_rate=0.7,
        init_cfg=dict(checkpoint='checkpoints/hornet-b_in1k.pth')),
    neck=dict(in_channels=[128, 256, 512, 1024]))
optim_wrapper = dict(paramwise_cfg=dict(decay_rate=0.8))
