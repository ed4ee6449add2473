"""Official AFNONet checkpoints (NVlabs/AFNO-transformer) -> mmspectral."""
from typing import Dict, Tuple, Union

from torch import Tensor

from mmspectral.checkpoint import CheckpointError
from .common import (ISOTROPIC_RULES, classifier_meta, count_prefixed,
                     grid_side, match_zoo_arch, rename_keys)


def infer_afno_arch(sd: Dict[str, Tensor]) -> Tuple[dict, int]:
    """The arch dict and pretrain image size of an official AFNONet state
    dict, read from its shapes."""
    try:
        dims, _, patch, _ = sd['patch_embed.proj.weight'].shape
        w1 = sd['blocks.0.filter.w1']  # (2, num_blocks, block, hidden)
        arch = dict(
            embed_dims=dims,
            depths=len(count_prefixed(sd, r'blocks\.(\d+)\.norm1\.weight')),
            num_blocks=w1.shape[1],
            mlp_ratio=sd['blocks.0.mlp.fc1.weight'].shape[0] / dims)
        img_size = grid_side(sd['pos_embed']) * patch
    except KeyError as err:
        raise CheckpointError(
            f'not an official AFNONet checkpoint: key {err} is missing'
        ) from err
    if arch['mlp_ratio'] == int(arch['mlp_ratio']):
        arch['mlp_ratio'] = int(arch['mlp_ratio'])
    if w1.shape[3] != w1.shape[2]:
        arch['hidden_size_factor'] = w1.shape[3] // w1.shape[2]
    if patch != 16:
        arch['patch_size'] = patch
    return arch, img_size


def convert_afno(sd: Dict[str, Tensor],
                 arch: Union[str, dict, None] = None) -> Tuple[dict, dict]:
    """Convert an official AFNONet state dict: the mmpretrain-style state
    dict and its meta (``arch``, ``pretrain_img_size``, ``num_classes``)."""
    from mmspectral.models import AFNO
    inferred, img_size = infer_afno_arch(sd)
    if arch is None:
        arch = match_zoo_arch(inferred, AFNO.arch_zoo) or inferred
    state_dict = rename_keys(sd, ISOTROPIC_RULES, source='official AFNONet')
    return state_dict, classifier_meta(sd, arch, img_size,
                                       'NVlabs/AFNO-transformer')


def build_afno_backbone(meta: dict):
    """The AFNO backbone an mmspectral AFNO checkpoint loads into (the
    classification layout: the normed stride-16 map)."""
    from mmspectral.models import AFNO
    return AFNO(arch=meta['arch'], pretrain_img_size=meta['pretrain_img_size'])
