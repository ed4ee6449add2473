"""HorNet checkpoints -> mmspectral: the official classification ones
(raoyongming/HorNet), the official dense ones (its mmdet 2.x Cascade Mask
R-CNN and mmseg 0.x UperNet checkpoints) and mmpretrain's
(hornet2mmpretrain.py output)."""
from typing import Dict, Tuple, Union

from torch import Tensor

from mmspectral.checkpoint import CheckpointError
from .common import (DENSE_HEAD_RULES, count_prefixed, dense_num_classes,
                     dense_task, match_zoo_arch, rename_keys)

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
# an official detector / segmentor: its backbone in the official layout
# (with the dense model's output norms norm0..norm3), its heads in mmdet 2.x
# / mmseg 0.x names
DENSE_RULES = [
    (r'backbone\.(stages\.\d+\.\d+)\.gamma([12])',
     r'backbone.\1.gamma\2.weight'),
    (r'backbone\.(stages\.\d+\.\d+\.gnconv)\.pws\.(.+)',
     r'backbone.\1.projs.\2'),
    (r'backbone\.((downsample_layers|stages)\..+|norm[0-3]\.(weight|bias))',
     r'\g<0>'),
] + DENSE_HEAD_RULES


def is_mmpretrain(sd: Dict[str, Tensor]) -> bool:
    return any(k.startswith('backbone.') for k in sd) and not is_dense(sd)


def is_dense(sd: Dict[str, Tensor]) -> bool:
    """An official detector's or segmentor's state dict."""
    return dense_task(sd) is not None


def infer_hornet_arch(sd: Dict[str, Tensor]) -> Tuple[dict, int]:
    """The arch dict and pretrain image size of a HorNet state dict (either
    source), read from its shapes."""
    prefix = 'backbone.' if any(k.startswith('backbone.') for k in sd) \
        else ''
    keys = [k[len(prefix):] for k in sd if k.startswith(prefix)]
    pws = 'projs' if any('.gnconv.projs.' in k for k in keys) else 'pws'
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
    """Convert an official (classification or dense) or mmpretrain HorNet
    state dict: the mmspectral state dict and its meta (``arch``,
    ``pretrain_img_size``, ``num_classes``, ``source``, and ``task`` for a
    dense one)."""
    from mmspectral.models import HorNet
    inferred, img_size = infer_hornet_arch(sd)
    if arch is None:
        arch = match_zoo_arch(inferred, HorNet.arch_zoo) or inferred
    task = dense_task(sd)
    if task is not None:
        state_dict = rename_keys(
            sd, DENSE_RULES,
            source=f'official HorNet {task} (mmdet 2.x / mmseg 0.x)')
        num_classes = dense_num_classes(sd)
    else:
        mmpretrain = is_mmpretrain(sd)
        state_dict = rename_keys(
            sd, MMPRETRAIN_RULES if mmpretrain else OFFICIAL_RULES,
            source='mmpretrain HorNet' if mmpretrain else 'official HorNet')
        head = state_dict.get('head.fc.weight')
        num_classes = 0 if head is None else head.shape[0]
    meta = dict(
        arch=arch,
        pretrain_img_size=img_size,
        num_classes=num_classes,
        source='mmpretrain' if task is None and is_mmpretrain(sd) else
        'raoyongming/HorNet')
    if task is not None:
        meta['task'] = task
    return state_dict, meta


def build_hornet_backbone(meta: dict):
    """The HorNet backbone an mmspectral HorNet checkpoint loads into: the
    classification layout (last stage, pooled, then normed), or the dense
    one (every stage's normed map) for a detector's or segmentor's."""
    from mmspectral.models import HorNet
    dense = 'task' in meta
    return HorNet(
        arch=meta['arch'],
        pretrain_img_size=meta['pretrain_img_size'],
        out_indices=(0, 1, 2, 3) if dense else (3, ),
        gap_before_final_norm=not dense)
