# The official HorNet segmentation recipe: UperNet 160k on ADE20K 512x512
# (ConvNeXt's: AdamW with stage-wise lr decay, AMP); HorNet-T-GF published
# 49.2 / 49.3 mIoU (single / multi-scale) with it.
_base_ = 'mmseg::convnext/convnext-tiny_upernet_8xb2-amp-160k_ade20k-512x512.py'  # noqa
custom_imports = dict(imports=['mmspectral'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmspectral.HorNet',
        arch='t-gf',
        pretrain_img_size=384,
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False,
        drop_path_rate=0.4,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/hornet-t-gf_in1k.pth',
            prefix='backbone.')),
    decode_head=dict(in_channels=[64, 128, 256, 512]),
    auxiliary_head=dict(in_channels=256))
# the same stage-wise decay, for any backbone with ConvNeXt's layout
optim_wrapper = dict(constructor='mmspectral.LayerDecayOptimizerConstructor')
auto_scale_lr = dict(enable=False, base_batch_size=16)
