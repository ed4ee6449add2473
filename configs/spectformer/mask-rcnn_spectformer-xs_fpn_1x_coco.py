# Mask R-CNN + FPN with vanilla SpectFormer-XS, 1x: the GFNet-XS setup (the
# same widths, simple feature pyramid and FPN) with SpectFormer's blocks.
_base_ = '../gfnet/mask-rcnn_gfnet-xs_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        type='mmspectral.SpectFormer',
        init_cfg=dict(checkpoint='checkpoints/spectformer-xs_in1k.pth')))
