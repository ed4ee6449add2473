# HorNet-T on ImageNet-1k: mmpretrain's recipe for the same model,
# with mmspectral's HorNet (official layer scale; shared spectral core).
_base_ = 'mmpretrain::hornet/hornet-tiny_8xb128_in1k.py'
custom_imports = dict(imports=['mmspectral'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='mmspectral.HorNet',
        arch='t',
        out_indices=(3, ),
        gap_before_final_norm=True))
