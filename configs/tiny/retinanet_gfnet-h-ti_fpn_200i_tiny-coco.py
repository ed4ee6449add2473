# The real RetinaNet config on the bundled tiny COCO-format data: only the
# data, the image scale and the schedule change (with gradient clipping,
# below).
_base_ = '../gfnet/retinanet_gfnet-h-ti_fpn_1x_coco.py'

data_root = 'data/tiny/coco/'
metainfo = dict(classes=('circle', 'square', 'triangle'))
num_classes = 3
scale = (176, 176)
max_iters = 200

model = dict(
    backbone=dict(drop_path_rate=0., init_cfg=None),
    bbox_head=dict(num_classes=num_classes))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=1,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

train_cfg = dict(
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=max_iters)
# Trained from scratch in 200 iterations, RetinaNet's focal loss stayed on
# its plateau for some seeds (bbox mAP 0.04 at one seed, 0.33-0.37 at
# others); clipping the gradient norm to 1 (it runs at 3-30 here) made every
# seed tried train (README's demo table).
optim_wrapper = dict(
    optimizer=dict(lr=4e-4), clip_grad=dict(max_norm=1.0, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, end=30),
    dict(
        type='CosineAnnealingLR',
        by_epoch=False,
        begin=30,
        end=max_iters,
        eta_min=1e-5),
]
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False)
# fixed seed: the demo's numbers are reproducible
randomness = dict(seed=0)
