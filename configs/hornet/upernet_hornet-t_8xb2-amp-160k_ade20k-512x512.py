# HorNet-T (7x7), UperNet 160k on ADE20K 512x512: published 48.1 / 48.9 mIoU
# (single / multi-scale + flip; ImageNet-1k pretraining), from the official
# semantic_segmentation/configs/hornet/
# upernet_hornet_tiny_7x7_512_160k_ade20k.py.
# The official recipe is ConvNeXt's (mmseg's config below): AdamW lr 1e-4
# with stage-wise lr decay, poly schedule, sliding-window test.
_base_ = 'mmseg::convnext/convnext-tiny_upernet_8xb2-amp-160k_ade20k-512x512.py'  # noqa
custom_imports = dict(imports=['mmspectral'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmspectral.HorNet',
        arch='t',
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False,
        drop_path_rate=0.4,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/hornet-t_in1k.pth',
            prefix='backbone.')),
    decode_head=dict(in_channels=[64, 128, 256, 512]),
    auxiliary_head=dict(in_channels=256))
optim_wrapper = dict(
    constructor='mmspectral.LayerDecayOptimizerConstructor',
    optimizer=dict(lr=1e-4),
    paramwise_cfg=dict(decay_rate=0.9, decay_type='stage_wise',
                       num_layers=6))
auto_scale_lr = dict(enable=False, base_batch_size=16)
