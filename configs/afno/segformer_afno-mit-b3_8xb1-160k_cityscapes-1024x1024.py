# SegFormer-B3 with AFNO token mixers on Cityscapes 1024x1024, 160k
# iterations: the AFNO paper's segmentation setting, on mmseg's SegFormer-B3
# recipe. The MiT-B3 ImageNet checkpoint initialises every weight that AFNO
# did not replace (patch embeddings, Mix-FFNs, norms).
_base_ = 'mmseg::segformer/segformer_mit-b3_8xb1-160k_cityscapes-1024x1024.py'
custom_imports = dict(imports=['mmspectral'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmspectral.AFNOMiT',
        arch='b3',
        drop_path_rate=0.1,
        # the paper also reports 25% of the modes (0.5 per axis): ~-0.05 mIoU
        hard_thresholding_fraction=1.0,
        init_cfg=dict(type='Pretrained', checkpoint={{_base_.checkpoint}})))
