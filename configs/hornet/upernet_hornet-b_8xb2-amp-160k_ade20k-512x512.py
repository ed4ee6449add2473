# HorNet-B (7x7), UperNet 160k on ADE20K 512x512: published 50.0 / 50.5 mIoU
# (single / multi-scale + flip; ImageNet-1k pretraining), from the official
# semantic_segmentation/configs/hornet/
# upernet_hornet_base_7x7_512_160k_ade20k.py.
_base_ = './upernet_hornet-t_8xb2-amp-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(
        arch='b',
        init_cfg=dict(checkpoint='checkpoints/hornet-b_in1k.pth')),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512))
