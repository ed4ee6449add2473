# Semantic FPN with GFNet-H-B on ADE20K 512x512, as the authors trained it
# (see fpn_gfnet-h-ti_8xb2-40k_ade20k-512x512.py); published 44.8 mIoU on
# ADE20K val.
_base_ = './fpn_gfnet-h-ti_8xb2-40k_ade20k-512x512.py'

model = dict(
    backbone=dict(
        arch='h-b',
        init_cfg=dict(checkpoint='checkpoints/gfnet-h-b_in1k.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
