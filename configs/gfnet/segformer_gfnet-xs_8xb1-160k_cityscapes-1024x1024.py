_base_ = './segformer_gfnet-h-ti_8xb1-160k_cityscapes-1024x1024.py'

# isotropic: the simple feature pyramid turns the normed stride-16 map into
# the four strides the SegFormer head takes
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmspectral.GFNet',
        arch='xs',
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/gfnet-xs_in1k.pth',
            prefix='backbone.')),
    neck=dict(type='mmspectral.SimpleFPN', in_channels=384),
    decode_head=dict(in_channels=[96, 192, 384, 384]))
