# HorNet-L (GF), UperNet 160k on ADE20K 640x640: published 55.0 / 55.2 mIoU
# (single / multi-scale + flip; ImageNet-22k pretraining), from the official
# semantic_segmentation/configs/hornet/
# upernet_hornet_large_gf_640_160k_ade20k.py.
_base_ = './upernet_hornet-l_8xb2-amp-160k_ade20k-640x640.py'

# the GF filters stored at 384 (24x13 / 12x7), as the official config
model = dict(
    backbone=dict(
        arch='l-gf',
        pretrain_img_size=384,
        init_cfg=dict(checkpoint='checkpoints/hornet-l-gf_in22k.pth')))
