"""Tiny models of every family in every exported head, for the deployment
tests (a helper, not a test module)."""
from pathlib import Path

from conftest import REPO

CONFIGS = REPO / 'configs'

#: Small archs of the five families (a few seconds to export each).
ARCHS = {
    'GFNetH': dict(embed_dims=[8, 16, 24, 32], depths=[1, 1, 1, 1],
                   mlp_ratio=2),
    'AFNO': dict(embed_dims=32, depths=2, num_blocks=4, mlp_ratio=2),
    'AFNOMiT': dict(embed_dims=[8, 16, 24, 32], depths=[1, 1, 1, 1],
                    num_blocks=[1, 2, 2, 4], mlp_ratio=2),
    'HorNet': dict(base_dim=8, depths=[1, 1, 1, 1], orders=[2, 3, 4, 5],
                   global_filter_stages=(2, 3)),
    'SpectFormerH': dict(embed_dims=[8, 16, 24, 32], depths=[1, 1, 2, 1],
                         num_heads=[1, 2, 3, 4], mlp_ratios=[2, 2, 2, 2],
                         stem_hidden_dim=8),
}
#: Channels of the four stages of each arch.
CHANNELS = {
    'GFNetH': [8, 16, 24, 32],
    'AFNO': [32],
    'AFNOMiT': [8, 16, 24, 32],
    'HorNet': [8, 16, 32, 64],
    'SpectFormerH': [8, 16, 24, 32],
}


def backbone(family: str, out_indices=(0, 1, 2, 3), **extra) -> str:
    text = (f"dict(_delete_=True, type='mmspectral.{family}', "
            f'arch={ARCHS[family]!r}')
    if family not in ('AFNOMiT', 'AFNO'):  # AFNO: its stride-16 map
        text += f', out_indices={tuple(out_indices)!r}'
    if family == 'HorNet':
        text += ', gap_before_final_norm=False'
    for key, value in extra.items():
        text += f', {key}={value!r}'
    return text + ')'


def classifier(family: str) -> str:
    return (f"_base_ = '{CONFIGS}/afno/afno-ti_8xb128_in1k.py'\n"
            f'model = dict(backbone={backbone(family, (3, ))}, '
            f'head=dict(num_classes=7, in_channels={CHANNELS[family][-1]}), '
            'train_cfg=None)\n'
            "test_dataloader = dict(dataset=dict(metainfo=dict(classes=("
            "'a', 'b', 'c', 'd', 'e', 'f', 'g'))))\n")


def retinanet(family: str) -> str:
    channels = CHANNELS[family][1:]
    return (f"_base_ = '{CONFIGS}/tiny/retinanet_gfnet-h-ti_fpn_200i_"
            "tiny-coco.py'\n"
            f'model = dict(backbone={backbone(family, (1, 2, 3))}, '
            f'neck=dict(in_channels={channels}, out_channels=16), '
            'bbox_head=dict(in_channels=16, feat_channels=16, '
            'stacked_convs=1))\n')


def mask_rcnn(family: str) -> str:
    neck = f'dict(in_channels={CHANNELS[family]}, out_channels=16)'
    if family == 'AFNO':  # isotropic: the simple feature pyramid, then FPN
        neck = ("[dict(type='mmspectral.SimpleFPN', in_channels=32), "
                "dict(type='FPN', in_channels=[8, 16, 32, 32], "
                'out_channels=16, num_outs=5)]')
    return (f"_base_ = '{CONFIGS}/tiny/mask-rcnn_gfnet-h-ti_fpn_60i_"
            "tiny-coco.py'\n"
            f'model = dict(backbone={backbone(family)}, '
            f'neck={neck}, '
            'rpn_head=dict(in_channels=16, feat_channels=16), '
            'roi_head=dict(bbox_roi_extractor=dict(out_channels=16), '
            'bbox_head=dict(in_channels=16, fc_out_channels=32), '
            'mask_roi_extractor=dict(out_channels=16), '
            'mask_head=dict(in_channels=16, conv_out_channels=16, '
            'num_convs=1)))\n')


def segformer(family: str) -> str:
    return (f"_base_ = '{CONFIGS}/tiny/segformer_gfnet-h-ti_200i_"
            "tiny-cityscapes.py'\n"
            f'model = dict(backbone={backbone(family)}, '
            f'decode_head=dict(in_channels={CHANNELS[family]}, '
            'channels=16))\n')


#: (head, family) pairs: every head once and every family at least once.
HEADS = {
    'classifier': ('AFNO', classifier),
    'retinanet': ('HorNet', retinanet),
    'mask_rcnn': ('GFNetH', mask_rcnn),
    'mask_rcnn-simple-fpn': ('AFNO', mask_rcnn),
    'segmentor': ('AFNOMiT', segformer),
    'segmentor-spectformer': ('SpectFormerH', segformer),
}


def write_config(folder: Path, head: str) -> Path:
    family, make = HEADS[head]
    path = folder / f'{head}_{family.lower()}.py'
    path.write_text(make(family))
    return path


def backbone_config(folder: Path, family: str) -> Path:
    """A segmentor config of ``family``, for exporting its backbone."""
    path = folder / f'backbone_{family.lower()}.py'
    path.write_text(segformer(family))
    return path


def valid_region_config(folder: Path, head: str) -> Path:
    """The config of ``head`` with ``valid_region=True`` in its backbone
    (and SimpleFPN) and the padding marked by the data preprocessor."""
    base = write_config(folder, head)
    family = HEADS[head][0]
    text = (f"_base_ = '{base.name}'\n"
            'model = dict(backbone=dict(valid_region=True), '
            'data_preprocessor=dict(pad_value=-1e38)')
    if family == 'AFNO' and head.startswith('mask_rcnn'):
        text += (", neck=[dict(type='mmspectral.SimpleFPN', in_channels=32, "
                 "valid_region=True), dict(type='FPN', "
                 'in_channels=[8, 16, 32, 32], out_channels=16, '
                 'num_outs=5)]')
    path = folder / f'{base.stem}_valid_region.py'
    path.write_text(text + ')\n')
    return path
