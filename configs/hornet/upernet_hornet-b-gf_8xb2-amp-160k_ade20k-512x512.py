# HorNet-B (GF), UperNet 160k on ADE20K 512x512: published 50.5 / 50.9 mIoU
# (single / multi-scale + flip; ImageNet-1k pretraining), from the official
# semantic_segmentation/configs/hornet/
# upernet_hornet_base_gf_512_160k_ade20k.py.
_base_ = './upernet_hornet-b_8xb2-amp-160k_ade20k-512x512.py'

# the GF filters stored at 384 (24x13 / 12x7), as the official config
model = dict(
    backbone=dict(
        arch='b-gf',
        pretrain_img_size=384,
        drop_path_rate=0.5,
        init_cfg=dict(checkpoint='checkpoints/hornet-b-gf_in1k.pth')))
