# AFNONet-Ti on ImageNet-1k. The official AFNONet training script is the
# GFNet/DeiT one (same optimiser, schedule and augmentation), so this config
# takes GFNet's and swaps the backbone.
_base_ = '../gfnet/gfnet-ti_8xb128_in1k.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmspectral.AFNO',
        arch='ti',
        drop_path_rate=0.1),
    head=dict(in_channels=256))
