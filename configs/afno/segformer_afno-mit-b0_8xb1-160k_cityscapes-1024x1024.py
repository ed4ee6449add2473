# SegFormer-B0 with AFNO token mixers on Cityscapes 1024x1024, 160k.
_base_ = 'mmseg::segformer/segformer_mit-b0_8xb1-160k_cityscapes-1024x1024.py'
custom_imports = dict(imports=['mmspectral'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmspectral.AFNOMiT',
        arch='b0',
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint={{_base_.checkpoint}})))
