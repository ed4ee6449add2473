# The real SegFormer-head config on the bundled tiny Cityscapes-layout data:
# only the data, the image scale and the schedule change.
_base_ = '../gfnet/segformer_gfnet-h-ti_8xb1-160k_cityscapes-1024x1024.py'

data_root = 'data/tiny/cityscapes/'
num_classes = 19  # Cityscapes trainIds
crop_size = (128, 128)
scale = (256, 128)
max_iters = 200

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(drop_path_rate=0., init_cfg=None),
    test_cfg=dict(_delete_=True, mode='whole'))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize', scale=scale, ratio_range=(0.75, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=4e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, end=30),
    dict(
        type='PolyLR',
        power=1.0,
        by_epoch=False,
        begin=30,
        end=max_iters,
        eta_min=0.),
]
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(by_epoch=False, interval=max_iters))
# fixed seed: the demo's numbers are reproducible
randomness = dict(seed=0)
