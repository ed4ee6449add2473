# HorNet-B-GF on ImageNet-1k: mmpretrain's recipe for the same model,
# with mmspectral's HorNet (official layer scale; shared spectral core).
_base_ = 'mmpretrain::hornet/hornet-base-gf_8xb64_in1k.py'
custom_imports = dict(imports=['mmspectral'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='mmspectral.HorNet',
        arch='b-gf',
        out_indices=(3, ),
        gap_before_final_norm=True))
