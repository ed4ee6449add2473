# HorNet-L (7x7), UperNet 160k on ADE20K 640x640: published 54.1 / 54.5 mIoU
# (single / multi-scale + flip; ImageNet-22k pretraining), from the official
# semantic_segmentation/configs/hornet/
# upernet_hornet_large_7x7_640_160k_ade20k.py.
# The official recipe is ConvNeXt's (mmseg's config below): AdamW lr 1e-4
# with stage-wise lr decay, poly schedule, sliding-window test.
_base_ = 'mmseg::convnext/convnext-large_upernet_8xb2-amp-160k_ade20k-640x640.py'  # noqa
custom_imports = dict(imports=['mmspectral'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmspectral.HorNet',
        arch='l',
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False,
        drop_path_rate=0.4,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/hornet-l_in22k.pth',
            prefix='backbone.')),
    decode_head=dict(in_channels=[192, 384, 768, 1536]),
    auxiliary_head=dict(in_channels=768))
optim_wrapper = dict(
    constructor='mmspectral.LayerDecayOptimizerConstructor',
    optimizer=dict(lr=1e-4),
    paramwise_cfg=dict(decay_rate=0.8, decay_type='stage_wise',
                       num_layers=6))
auto_scale_lr = dict(enable=False, base_batch_size=16)
