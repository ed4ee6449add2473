# SegFormer's all-MLP head on hierarchical SpectFormer-H-S, Cityscapes
# 1024x1024, 160k.
_base_ = '../gfnet/segformer_gfnet-h-ti_8xb1-160k_cityscapes-1024x1024.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmspectral.SpectFormerH',
        arch='h-s',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/spectformer-h-s_in1k.pth',
            prefix='backbone.')),
    decode_head=dict(in_channels=[64, 128, 320, 448]))
