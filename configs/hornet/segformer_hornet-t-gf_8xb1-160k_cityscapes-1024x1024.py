# SegFormer's all-MLP head on HorNet-T-GF, Cityscapes 1024x1024, 160k.
_base_ = '../gfnet/segformer_gfnet-h-ti_8xb1-160k_cityscapes-1024x1024.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmspectral.HorNet',
        arch='t-gf',
        pretrain_img_size=384,
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False,
        drop_path_rate=0.2,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/hornet-t-gf_in1k.pth',
            prefix='backbone.')),
    decode_head=dict(in_channels=[64, 128, 256, 512]))
