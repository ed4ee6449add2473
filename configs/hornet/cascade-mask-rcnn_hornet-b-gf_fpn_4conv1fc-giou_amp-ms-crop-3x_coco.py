# HorNet-B (GF), Cascade Mask R-CNN 3x on COCO: published 54.0 box AP / 46.9
# mask AP (ImageNet-1k pretraining), from the official
# object_detection/configs/hornet/
# cascade_mask_rcnn_hornet_base_gf_3x_coco_in1k.py.
_base_ = './cascade-mask-rcnn_hornet-b_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py'  # noqa

# the GF filters stored at 224 (14x8 / 7x4), as the official config
model = dict(
    backbone=dict(
        arch='b-gf',
        init_cfg=dict(checkpoint='checkpoints/hornet-b-gf_in1k.pth')))
