# HorNet-T (7x7), Cascade Mask R-CNN 3x on COCO: published 51.7 box AP / 44.8
# mask AP (ImageNet-1k pretraining), from the official
# object_detection/configs/hornet/
# cascade_mask_rcnn_hornet_tiny_7x7_3x_coco_in1k.py.
# The official recipe is ConvNeXt's (mmdet's config below): multi-scale crop,
# GIoU, 4conv1fc heads, AdamW lr 2e-4 with layer-wise lr decay, 36 epochs.
_base_ = 'mmdet::convnext/cascade-mask-rcnn_convnext-t-p4-w7_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py'  # noqa
custom_imports = dict(imports=['mmspectral'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmspectral.HorNet',
        arch='t',
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False,
        drop_path_rate=0.4,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/hornet-t_in1k.pth',
            prefix='backbone.')),
    neck=dict(in_channels=[64, 128, 256, 512]))
# the official layer-wise decay over 12 layer ids (the README notes the one
# difference of mmspectral.LayerDecayOptimizerConstructor)
optim_wrapper = dict(
    constructor='mmspectral.LayerDecayOptimizerConstructor',
    optimizer=dict(lr=2e-4),
    paramwise_cfg=dict(decay_rate=0.7, decay_type='layer_wise',
                       num_layers=12))
auto_scale_lr = dict(enable=False, base_batch_size=16)
