# Semantic FPN with GFNet-H-TI on ADE20K 512x512, as the authors trained it
# (GFNet issue #1: PVT's Semantic FPN settings, whai362/PVT segmentation/
# configs/sem_fpn/PVT/fpn_pvt_*_ade20k_40k.py: 8 GPUs x 2 images, AdamW lr
# 2e-4, weight decay 1e-4, poly schedule (power 0.9) over 40k iterations);
# published 41.0 mIoU on ADE20K val.
_base_ = 'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py'
custom_imports = dict(imports=['mmspectral'], allow_failed_imports=False)

max_iters = 40000
model = dict(
    pretrained=None,  # the base's ResNet weights; ours come by init_cfg
    backbone=dict(
        _delete_=True,
        type='mmspectral.GFNetH',
        arch='h-ti',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/gfnet-h-ti_in1k.pth',
            prefix='backbone.')),
    neck=dict(in_channels=[64, 128, 256, 512]))

train_dataloader = dict(batch_size=2)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=1e-4))
param_scheduler = [
    dict(
        type='PolyLR',
        power=0.9,
        eta_min=0.0,
        begin=0,
        end=max_iters,
        by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=4000)
default_hooks = dict(checkpoint=dict(interval=4000))
auto_scale_lr = dict(enable=False, base_batch_size=16)
