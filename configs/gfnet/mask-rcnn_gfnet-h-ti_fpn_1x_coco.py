# Mask R-CNN + FPN with GFNet-H-Ti on COCO, 1x schedule: Swin-T's mmdet
# recipe (AdamW lr 1e-4, wd 0.05, 12 epochs) with a GFNet backbone.
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py'
custom_imports = dict(imports=['mmspectral'], allow_failed_imports=False)

# an ImageNet checkpoint converted with
# tools/model_converters/gfnet2mmspectral.py (see the README)
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

# no weight decay on filters, position embedding, norms and layer scales
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={
            'complex_weight': dict(decay_mult=0.),
            'pos_embed': dict(decay_mult=0.),
            '.gamma': dict(decay_mult=0.),
        }))
# lr 1e-4 was set for 8 GPUs x 2 images
auto_scale_lr = dict(enable=False, base_batch_size=16)
