# The official HorNet detection recipe: Cascade Mask R-CNN 3x (multi-scale
# crop, GIoU, 4conv1fc heads, AdamW with layer-wise lr decay, AMP), which is
# ConvNeXt's; HorNet-T-GF published 52.4 box AP / 45.6 mask AP with it.
_base_ = 'mmdet::convnext/cascade-mask-rcnn_convnext-t-p4-w7_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py'  # noqa
custom_imports = dict(imports=['mmspectral'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmspectral.HorNet',
        arch='t-gf',
        pretrain_img_size=384,
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False,
        drop_path_rate=0.4,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/hornet-t-gf_in1k.pth',
            prefix='backbone.')),
    neck=dict(in_channels=[64, 128, 256, 512]))
# the same layer-wise decay, for any backbone with ConvNeXt's layout; HorNet's
# stage 3 has 18 blocks: 12 layer ids (ConvNeXt-T's 9 use 6)
optim_wrapper = dict(
    constructor='mmspectral.LayerDecayOptimizerConstructor',
    paramwise_cfg=dict(num_layers=12))
auto_scale_lr = dict(enable=False, base_batch_size=16)
