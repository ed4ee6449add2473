"""HorNet checkpoints -> mmspectral: the official ones
(raoyongming/HorNet) and mmpretrain's (hornet2mmpretrain.py output)."""
from typing import Dict, Tuple, Union

from torch import Tensor

from mmspectral.checkpoint import CheckpointError
from .common import count_prefixed, match_zoo_arch, rename_keys

# mmspectral's HorNet has mmpretrain's key layout: official checkpoints get
# hornet2mmpretrain.py's renaming, mmpretrain ones load unchanged
OFFICIAL_RULES = [
    (r'(stages\.\d+\.\d+)\.gamma([12])', r'backbone.\1.gamma\2.weight'),
    (r'(stages\.\d+\.\d+\.gnconv)\.pws\.(.+)', r'backbone.\1.projs.\2'),
    (r'(downsample_layers\..+|stages\..+)', r'backbone.\1'),
    (r'norm\.(weight|bias)', r'backbone.norm3.\1'),
    (r'head\.(weight|bias)', r'head.fc.\1'),
]
MMPRETRAIN_RULES = [(r'(backbone\..+|head\.fc\..+)', r'\1')]


def is_mmpretrain(sd: Dict[str, Tensor]) -> bool:
    return any(k.startswith('backbone.') for k in sd)


def infer_hornet_arch(sd: Dict[str, Tensor]) -> Tuple[dict, int]:
    """The arch dict and pretrain image size of a HorNet state dict (either
    source), read from its shapes."""
    prefix = 'backbone.' if is_mmpretrain(sd) else ''
    keys = [k[len(prefix):] for k in sd if k.startswith(prefix)]
    pws = 'projs' if prefix else 'pws'
    try:
        base = sd[f'{prefix}downsample_layers.0.0.weight'].shape[0]
        depths = [
            len(count_prefixed(keys, rf'stages\.{s}\.(\d+)\.norm1\.weight'))
            for s in range(4)
        ]
        orders = [
            len(count_prefixed(
                keys, rf'stages\.{s}\.0\.gnconv\.{pws}\.(\d+)\.weight')) + 1
            for s in range(4)
        ]
    except KeyError as err:
        raise CheckpointError(
            f'not a HorNet checkpoint: key {err} is missing') from err
    gf_stages = tuple(
        s for s in range(4)
        if f'stages.{s}.0.gnconv.dwconv.complex_weight' in keys)
    img_size = 224
    if gf_stages:
        weight = sd[f'{prefix}stages.{gf_stages[0]}.0.gnconv.dwconv.'
                    'complex_weight']
        img_size = weight.shape[1] * 2**(gf_stages[0] + 2)
    arch = dict(base_dim=base, depths=depths, orders=orders,
                global_filter_stages=gf_stages)
    return arch, img_size


def convert_hornet(sd: Dict[str, Tensor],
                   arch: Union[str, dict, None] = None) -> Tuple[dict, dict]:
    """Convert an official or mmpretrain HorNet state dict: the
    mmpretrain-style state dict and its meta."""
    from mmspectral.models import HorNet
    inferred, img_size = infer_hornet_arch(sd)
    if arch is None:
        arch = match_zoo_arch(inferred, HorNet.arch_zoo) or inferred
    mmpretrain = is_mmpretrain(sd)
    state_dict = rename_keys(
        sd, MMPRETRAIN_RULES if mmpretrain else OFFICIAL_RULES,
        source='mmpretrain HorNet' if mmpretrain else 'official HorNet')
    head = state_dict.get('head.fc.weight')
    meta = dict(
        arch=arch,
        pretrain_img_size=img_size,
        num_classes=0 if head is None else head.shape[0],
        source='mmpretrain' if mmpretrain else 'raoyongming/HorNet')
    return state_dict, meta


def build_hornet_backbone(meta: dict):
    """The HorNet backbone an mmspectral HorNet checkpoint loads into (the
    classification layout: last stage, pooled, then normed)."""
    from mmspectral.models import HorNet
    return HorNet(
        arch=meta['arch'],
        pretrain_img_size=meta['pretrain_img_size'],
        out_indices=(3, ),
        gap_before_final_norm=True)
