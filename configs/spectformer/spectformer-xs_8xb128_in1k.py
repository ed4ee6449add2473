# Vanilla SpectFormer-XS on ImageNet-1k. The official vanilla training script
# is GFNet's (DeiT recipe), so this config takes GFNet's and swaps the
# backbone.
_base_ = '../gfnet/gfnet-ti_8xb128_in1k.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmspectral.SpectFormer',
        arch='xs',
        drop_path_rate=0.1),
    head=dict(in_channels=384))
