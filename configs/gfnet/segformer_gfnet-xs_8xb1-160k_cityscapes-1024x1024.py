_base_ = './segformer_gfnet-h-ti_8xb1-160k_cityscapes-1024x1024.py'

model = dict(
    backbone=dict(
        type='mmspectral.GFNet',
        arch='xs',
        drop_path_rate=0.1,
        init_cfg=dict(checkpoint='checkpoints/gfnet-xs_in1k.pth')),
    decode_head=dict(in_channels=[96, 192, 384, 384]))
