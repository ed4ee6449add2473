# The AFNO-MiT SegFormer on the bundled tiny Cityscapes-layout data: the tiny
# GFNet SegFormer setup (data, image scale, schedule) with the AFNO-MiT-B0
# backbone of configs/afno/segformer_afno-mit-b0_8xb1-160k_cityscapes-*.py
_base_ = './segformer_gfnet-h-ti_200i_tiny-cityscapes.py'

model = dict(
    backbone=dict(_delete_=True, type='mmspectral.AFNOMiT', arch='b0'),
    decode_head=dict(in_channels=[32, 64, 160, 256]))
