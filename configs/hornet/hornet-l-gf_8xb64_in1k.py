# HorNet-L-GF: trained on ImageNet-22k by the authors; this config is
# HorNet-B-GF's ImageNet-1k recipe with the L backbone.
_base_ = './hornet-b-gf_8xb64_in1k.py'

model = dict(
    backbone=dict(arch='l-gf', drop_path_rate=0.2),
    head=dict(in_channels=1536))
