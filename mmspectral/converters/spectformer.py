"""Official SpectFormer checkpoints (badripatro/SpectFormers) ->
mmspectral, vanilla and hierarchical."""
from typing import Dict, Tuple, Union

from torch import Tensor

from mmspectral.checkpoint import CheckpointError
from .common import (ISOTROPIC_RULES, classifier_meta, count_prefixed,
                     grid_side, match_zoo_arch, rename_keys)

HIERARCHICAL_RULES = [
    (r'(block[12]\.\d+)\.attn\.complex_weight',
     r'backbone.\1.filter.complex_weight'),
    (r'(block\d\.\d+\.mlp)\.dwconv\.dwconv\.(.+)', r'backbone.\1.dwconv.\2'),
    (r'((patch_embed|block|norm)\d.+|post_network\..+)', r'backbone.\1'),
    (r'head\.(weight|bias)', r'head.fc.\1'),
    (r'aux_head\.(weight|bias)', r'head.aux_fc.\1'),
]
# the official hierarchical configs all use 32-channel heads, which the
# weights cannot tell
HEAD_DIMS = 32


def _int_if_whole(value: float):
    return int(value) if value == int(value) else value


def infer_spectformer_arch(sd: Dict[str, Tensor]) -> Tuple[dict, int]:
    """The arch dict and pretrain image size of an official SpectFormer
    state dict, read from its shapes."""
    keys = list(sd)
    try:
        if 'patch_embed1.proj.weight' in sd:
            dims = [sd[f'patch_embed{i}.proj.weight'].shape[0]
                    for i in range(1, 5)]
            arch = dict(
                embed_dims=dims,
                depths=[len(count_prefixed(
                    keys, rf'block{i}\.(\d+)\.norm1\.weight'))
                        for i in range(1, 5)],
                num_heads=[d // HEAD_DIMS for d in dims],
                mlp_ratios=[_int_if_whole(
                    sd[f'block{i + 1}.0.mlp.fc1.weight'].shape[0] / d)
                            for i, d in enumerate(dims)],
                stem_hidden_dim=sd['patch_embed1.conv.0.weight'].shape[0])
            grid = sd['block1.0.attn.complex_weight'].shape[0]
            return arch, grid * 4
        dims, _, patch, _ = sd['patch_embed.proj.weight'].shape
        arch = dict(
            embed_dims=dims,
            depths=len(count_prefixed(keys, r'blocks\.(\d+)\.norm1\.weight')),
            mlp_ratio=_int_if_whole(sd['blocks.0.mlp.fc1.weight'].shape[0] /
                                    dims),
            # the official code hard-codes 6 heads
            num_heads=6,
            spectral_depth=len(count_prefixed(
                keys, r'blocks\.(\d+)\.filter\.complex_weight')))
        if arch['spectral_depth'] == 4:
            del arch['spectral_depth']
        if patch != 16:
            arch['patch_size'] = patch
        return arch, grid_side(sd['pos_embed']) * patch
    except KeyError as err:
        raise CheckpointError(
            f'not an official SpectFormer checkpoint: key {err} is missing'
        ) from err


def convert_spectformer(
        sd: Dict[str, Tensor],
        arch: Union[str, dict, None] = None) -> Tuple[dict, dict]:
    """Convert an official SpectFormer state dict: the mmpretrain-style
    state dict and its meta."""
    from mmspectral.models import SpectFormer, SpectFormerH
    inferred, img_size = infer_spectformer_arch(sd)
    if arch is None:
        arch = _match(inferred, {
            **SpectFormer.arch_zoo,
            **SpectFormerH.arch_zoo
        }) or inferred
    hierarchical = 'patch_embed1.proj.weight' in sd
    state_dict = rename_keys(
        sd, HIERARCHICAL_RULES if hierarchical else ISOTROPIC_RULES,
        source='official SpectFormer')
    return state_dict, classifier_meta(sd, arch, img_size,
                                       'badripatro/SpectFormers')


def _match(inferred: dict, arch_zoo: dict):
    """A zoo arch with the same shapes; heads are not part of the shapes
    (hierarchical: unknown; vanilla: the official 6)."""
    shapes = {k: v for k, v in inferred.items() if k != 'num_heads'}
    zoo = {name: {k: v for k, v in settings.items() if k != 'num_heads'}
           for name, settings in arch_zoo.items()}
    name = match_zoo_arch(shapes, zoo)
    if name is None or (isinstance(inferred['embed_dims'], int)
                        and arch_zoo[name]['num_heads'] != 6):
        # a vanilla model that ran with the official 6 heads keeps them
        return None
    return name


def build_spectformer_backbone(meta: dict):
    """The SpectFormer backbone an mmspectral SpectFormer checkpoint loads
    into (the classification layout)."""
    from mmspectral.models import SpectFormer, SpectFormerH
    arch = meta['arch']
    if isinstance(arch, str) and arch in SpectFormerH.arch_zoo or isinstance(
            arch, dict) and isinstance(arch.get('embed_dims'), list):
        return SpectFormerH(
            arch=meta['arch'],
            pretrain_img_size=meta['pretrain_img_size'],
            out_indices=(3, ),
            out_type='cls_token')
    return SpectFormer(
        arch=meta['arch'], pretrain_img_size=meta['pretrain_img_size'])
