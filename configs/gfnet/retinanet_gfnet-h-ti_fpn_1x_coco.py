# RetinaNet + FPN with GFNet-H-Ti on COCO, 1x: PVTv2's mmdet recipe (AdamW
# lr 1e-4, wd 1e-4, 12 epochs) with a GFNet backbone.
_base_ = 'mmdet::pvt/retinanet_pvtv2-b0_fpn_1x_coco.py'
custom_imports = dict(imports=['mmspectral'], allow_failed_imports=False)

pretrained = 'checkpoints/gfnet-h-ti_in1k.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmspectral.GFNetH',
        arch='h-ti',
        # stride 4 is not used by RetinaNet's FPN: leave it out, so that no
        # parameter goes without a gradient
        out_indices=(1, 2, 3),
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(in_channels=[128, 256, 512], start_level=0, num_outs=5))

optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={
            'complex_weight': dict(decay_mult=0.),
            'pos_embed': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.),
            '.gamma': dict(decay_mult=0.),
        }))
auto_scale_lr = dict(enable=False, base_batch_size=16)
