# HorNet-S (7x7), UperNet 160k on ADE20K 512x512: published 49.2 / 49.8 mIoU
# (single / multi-scale + flip; ImageNet-1k pretraining), from the official
# semantic_segmentation/configs/hornet/
# upernet_hornet_small_7x7_512_160k_ade20k.py.
_base_ = './upernet_hornet-t_8xb2-amp-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(
        arch='s',
        drop_path_rate=0.3,
        init_cfg=dict(checkpoint='checkpoints/hornet-s_in1k.pth')),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
