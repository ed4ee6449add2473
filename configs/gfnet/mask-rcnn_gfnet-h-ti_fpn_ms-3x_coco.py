# Mask R-CNN + FPN with GFNet-H-Ti, multi-scale 3x schedule: Swin-T's mmdet
# ms-crop-3x recipe with a GFNet backbone.
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py'
custom_imports = dict(imports=['mmspectral'], allow_failed_imports=False)

pretrained = 'checkpoints/gfnet-h-ti_in1k.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmspectral.GFNetH',
        arch='h-ti',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(in_channels=[64, 128, 256, 512]))

optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={
            'complex_weight': dict(decay_mult=0.),
            'pos_embed': dict(decay_mult=0.),
            '.gamma': dict(decay_mult=0.),
        }))
auto_scale_lr = dict(enable=False, base_batch_size=16)
