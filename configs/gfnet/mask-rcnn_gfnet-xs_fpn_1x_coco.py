_base_ = './mask-rcnn_gfnet-h-ti_fpn_1x_coco.py'

# isotropic: the backbone's normed stride-16 map goes through the simple
# feature pyramid (strides 4-32, channels C/4, C/2, C, C), then the FPN
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
    neck=[
        dict(type='mmspectral.SimpleFPN', in_channels=384),
        dict(
            type='FPN',
            in_channels=[96, 192, 384, 384],
            out_channels=256,
            num_outs=5),
    ])
