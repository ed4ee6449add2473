# SegFormer's all-MLP head on GFNet-H-Ti, Cityscapes 1024x1024, 160k
# iterations: mmseg's SegFormer recipe (AdamW lr 6e-5, head lr x10, poly).
_base_ = 'mmseg::segformer/segformer_mit-b0_8xb1-160k_cityscapes-1024x1024.py'
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
    decode_head=dict(in_channels=[64, 128, 256, 512]))

optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={
            'complex_weight': dict(decay_mult=0.),
            'pos_embed': dict(decay_mult=0.),
            '.gamma': dict(decay_mult=0.),
        }))
# lr 6e-5 was set for 8 GPUs x 1 image
auto_scale_lr = dict(enable=False, base_batch_size=8)
