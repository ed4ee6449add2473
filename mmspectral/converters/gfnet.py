"""Official GFNet checkpoints (raoyongming/GFNet) -> mmspectral."""
from typing import Dict, Tuple, Union

from torch import Tensor

from mmspectral.checkpoint import CheckpointError
from .common import (ISOTROPIC_RULES, classifier_meta, count_prefixed,
                     grid_side, match_zoo_arch, rename_keys)

PYRAMID_RULES = [
    (r'patch_embed\.0\.proj\.(weight|bias)', r'backbone.patch_embed.\1'),
    (r'patch_embed\.([123])\.proj\.(weight|bias)',
     lambda m: f'backbone.downsamples.{int(m.group(1)) - 1}.{m.group(2)}'),
    (r'pos_embed', 'backbone.pos_embed.weight'),
    (r'blocks\.(\d+)\.(\d+)\.gamma',
     r'backbone.stages.\1.\2.layer_scale.gamma'),
    (r'blocks\.(\d+)\.(\d+)\.(.+)', r'backbone.stages.\1.\2.\3'),
    (r'norm\.(weight|bias)', r'backbone.norm3.\1'),
    (r'head\.(weight|bias)', r'head.fc.\1'),
]


def infer_gfnet_arch(sd: Dict[str, Tensor]) -> Tuple[dict, int]:
    """The arch dict and pretrain image size of an official GFNet state
    dict, read from its shapes."""
    keys = list(sd)
    try:
        if 'patch_embed.0.proj.weight' in sd:
            dims = [sd['patch_embed.0.proj.weight'].shape[0]] + [
                sd[f'patch_embed.{i}.proj.weight'].shape[0] for i in (1, 2, 3)
            ]
            depths = [
                len(count_prefixed(keys,
                                   rf'blocks\.{s}\.(\d+)\.norm1\.weight'))
                for s in range(4)
            ]
            patch = sd['patch_embed.0.proj.weight'].shape[-1]
            hidden = sd['blocks.0.0.mlp.fc1.weight'].shape[0]
            arch = dict(embed_dims=dims, depths=depths,
                        mlp_ratio=hidden / dims[0])
            if 'blocks.0.0.gamma' in sd:
                # the init value is not stored; 1e-5 is the official default
                arch['layer_scale_init_value'] = 1e-5
        else:
            dims = sd['patch_embed.proj.weight'].shape[0]
            depth = len(count_prefixed(keys, r'blocks\.(\d+)\.norm1\.weight'))
            patch = sd['patch_embed.proj.weight'].shape[-1]
            hidden = sd['blocks.0.mlp.fc1.weight'].shape[0]
            arch = dict(embed_dims=dims, depths=depth, mlp_ratio=hidden / dims)
        if arch['mlp_ratio'] == int(arch['mlp_ratio']):
            arch['mlp_ratio'] = int(arch['mlp_ratio'])
        default_patch = 4 if isinstance(arch['embed_dims'], list) else 16
        if patch != default_patch:
            arch['patch_size'] = patch
        img_size = grid_side(sd['pos_embed']) * patch
    except KeyError as err:
        raise CheckpointError(
            f'not an official GFNet checkpoint: key {err} is missing') from err
    return arch, img_size


def convert_gfnet(sd: Dict[str, Tensor],
                  arch: Union[str, dict, None] = None) -> Tuple[dict, dict]:
    """Convert an official GFNet state dict.

    Returns:
        tuple[dict, dict]: The mmpretrain-style state dict (``backbone.*``
        and ``head.fc.*``) and its meta (``arch``, ``pretrain_img_size``,
        ``num_classes``).
    """
    from mmspectral.models import GFNet, GFNetH
    inferred, img_size = infer_gfnet_arch(sd)
    zoo_name = match_zoo_arch(inferred, {**GFNet.arch_zoo, **GFNetH.arch_zoo})
    if arch is None:
        arch = zoo_name or inferred
    pyramid = 'patch_embed.0.proj.weight' in sd
    state_dict = rename_keys(sd, PYRAMID_RULES if pyramid else ISOTROPIC_RULES,
                             source='official GFNet')
    return state_dict, classifier_meta(sd, arch, img_size, 'raoyongming/GFNet')


def is_pyramid_arch(arch: Union[str, dict]) -> bool:
    """Whether ``arch`` is one of :class:`GFNetH` (else :class:`GFNet`)."""
    if isinstance(arch, str):
        return arch.lower().startswith('h-')
    return not isinstance(arch.get('embed_dims'), int)


def build_gfnet_backbone(meta: dict):
    """The GFNet backbone an mmspectral GFNet checkpoint loads into: the
    classification layout, i.e. only the last (normed) output."""
    from mmspectral.models import GFNet, GFNetH
    if is_pyramid_arch(meta['arch']):
        return GFNetH(arch=meta['arch'],
                      pretrain_img_size=meta['pretrain_img_size'],
                      out_indices=(3, ))
    return GFNet(arch=meta['arch'],
                 pretrain_img_size=meta['pretrain_img_size'])
