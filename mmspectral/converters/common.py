"""Reading official checkpoints and writing mmpretrain-style ones."""
import argparse
import math
import os
import os.path as osp
import re
import tempfile
from collections import OrderedDict
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import torch
from torch import Tensor

from mmspectral.version import __version__


class CheckpointError(ValueError):
    """A checkpoint that cannot be converted or loaded as asked."""


# official ViT-style checkpoints (isotropic GFNet, AFNONet, SpectFormer)
ISOTROPIC_RULES = [
    (r'patch_embed\.proj\.(weight|bias)', r'backbone.patch_embed.\1'),
    (r'pos_embed', 'backbone.pos_embed.weight'),
    (r'blocks\.(\d+)\.(.+)', r'backbone.blocks.\1.\2'),
    (r'norm\.(weight|bias)', r'backbone.norm.\1'),
    (r'head\.(weight|bias)', r'head.fc.\1'),
]


def grid_side(pos_embed: Tensor) -> int:
    """The side of the square token grid of a ``(1, N, C)`` embedding."""
    side = int(round(math.sqrt(pos_embed.shape[1])))
    if side * side != pos_embed.shape[1]:
        raise CheckpointError(
            f'pos_embed of shape {tuple(pos_embed.shape)} is not a square '
            'grid')
    return side


def load_official_state_dict(path: str) -> Dict[str, Tensor]:
    """The model weights of an official checkpoint.

    Accepts a dict with ``'model'`` (or ``'state_dict'``) or a bare state
    dict, and strips a ``module.`` prefix left by DDP. Loading is
    weights-only; ``argparse.Namespace`` (the training args DeiT-style scripts
    save) is allowed.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # corrupt file or a non-weights pickle
        raise CheckpointError(
            f'{path} is not a readable weights-only PyTorch checkpoint: '
            f'{err}') from err
    if isinstance(ckpt, dict):
        for key in ('model', 'state_dict', 'model_ema'):
            if isinstance(ckpt.get(key), dict):
                ckpt = ckpt[key]
                break
    if not isinstance(ckpt, dict) or not ckpt or not all(
            isinstance(v, Tensor) for v in ckpt.values()):
        raise CheckpointError(
            f'{path} holds no state dict (expected a dict of tensors, or one '
            "under 'model' / 'state_dict')")
    return OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v)
        for k, v in ckpt.items())


def rename_keys(state_dict: Dict[str, Tensor],
                rules: Iterable[Tuple[str, str]],
                transforms: Dict[str, Callable[[Tensor], Tensor]] = None,
                source: str = 'official') -> 'OrderedDict[str, Tensor]':
    """Rename every key with the first matching ``(regex, replacement)`` rule;
    a key no rule matches is an error that names it.

    ``transforms`` maps a regex on the NEW key to a function applied to the
    tensor (e.g. a permutation of a weight layout)."""
    rules = [(re.compile(pattern), repl) for pattern, repl in rules]
    transforms = {re.compile(k): f for k, f in (transforms or {}).items()}
    out, unknown = OrderedDict(), []
    for key, value in state_dict.items():
        for pattern, repl in rules:
            if pattern.fullmatch(key):
                new_key = pattern.sub(repl, key)
                for t_pattern, func in transforms.items():
                    if t_pattern.fullmatch(new_key):
                        value = func(value)
                out[new_key] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointError(
            f'{len(unknown)} key(s) are not {source} keys this converter '
            f'knows: {unknown[:10]}' + (' ...' if len(unknown) > 10 else ''))
    return out


def match_zoo_arch(arch: dict, arch_zoo: dict) -> Optional[str]:
    """The zoo name whose shape-defining settings equal ``arch``'s."""
    shape_keys = ('embed_dims', 'depths', 'mlp_ratio', 'patch_size',
                  'num_blocks', 'hidden_size_factor', 'base_dim', 'orders',
                  'global_filter_stages', 'num_heads', 'spectral_depth',
                  'mlp_ratios', 'stem_hidden_dim')
    for name, zoo in arch_zoo.items():
        if all(zoo.get(k) == arch.get(k) for k in shape_keys) and \
                ('layer_scale_init_value' in zoo) == \
                ('layer_scale_init_value' in arch):
            return name
    return None


def check_loads(model: torch.nn.Module, state_dict: Dict[str, Tensor],
                what: str):
    """Load ``state_dict`` strictly into ``model`` or raise an error naming
    the missing, unexpected and mis-shaped keys."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    mismatched = [
        f'{k}: checkpoint {tuple(state_dict[k].shape)} vs model '
        f'{tuple(own[k].shape)}' for k in sorted(set(own) & set(state_dict))
        if own[k].shape != state_dict[k].shape
    ]
    if missing or unexpected or mismatched:
        lines = [f'the checkpoint does not match {what}:']
        for title, keys in (('missing keys', missing), ('unexpected keys',
                                                        unexpected),
                            ('shape mismatches', mismatched)):
            if keys:
                lines.append(f'  {title} ({len(keys)}): ' + ', '.join(
                    keys[:8]) + (' ...' if len(keys) > 8 else ''))
        raise CheckpointError('\n'.join(lines))
    model.load_state_dict(state_dict, strict=True)


def save_checkpoint(state_dict: Dict[str, Tensor], meta: dict, dst: str,
                    overwrite: bool = False) -> str:
    """Write ``{'state_dict': ..., 'meta': ...}`` to ``dst`` atomically,
    refusing to replace an existing file unless ``overwrite``."""
    if osp.exists(dst) and not overwrite:
        raise FileExistsError(
            f'{dst} exists; pass --overwrite to replace it')
    folder = osp.dirname(osp.abspath(dst))
    os.makedirs(folder, exist_ok=True)
    meta = dict(meta, mmspectral_version=__version__)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix='.tmp')
    os.close(fd)
    try:
        torch.save({'state_dict': state_dict, 'meta': meta}, tmp)
        os.replace(tmp, dst)
    except BaseException:
        os.remove(tmp)
        raise
    return dst


def count_prefixed(keys: Iterable[str], pattern: str) -> List[int]:
    """Sorted distinct integers captured by ``pattern`` over ``keys``."""
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for k in keys if (m := regex.match(k))})


def backbone_part(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """The ``backbone.*`` entries without their prefix."""
    return OrderedDict((k[len('backbone.'):], v)
                       for k, v in state_dict.items()
                       if k.startswith('backbone.'))


def run_converter(argv, family: str, source: str, convert: Callable,
                  build_backbone: Callable, archs: Iterable[str]):
    """Command line of ``tools/model_converters/{family}2mmspectral.py``.

    ``convert(state_dict, arch)`` returns ``(state_dict, meta)``;
    ``build_backbone(meta)`` builds the backbone the result must load into
    strictly, which checks every key and shape before anything is written.
    """
    parser = argparse.ArgumentParser(
        description=f'Convert an official {family} checkpoint ({source}) to '
        'an mmpretrain-style mmspectral checkpoint: state_dict with '
        "'backbone.*' and 'head.fc.*' keys. Load it into a classifier config "
        "with load_from, or into any downstream backbone with init_cfg=dict("
        "type='Pretrained', checkpoint=DST, prefix='backbone.').")
    parser.add_argument('src', help='official checkpoint (.pth)')
    parser.add_argument('dst', help='output path')
    parser.add_argument(
        '--arch',
        choices=sorted(archs),
        help='expected arch; the checkpoint must match it (default: read '
        'from the checkpoint shapes)')
    parser.add_argument(
        '--overwrite', action='store_true', help='replace an existing DST')
    args = parser.parse_args(argv)
    try:
        if osp.exists(args.dst) and not args.overwrite:
            raise FileExistsError(
                f'{args.dst} exists; pass --overwrite to replace it')
        official = load_official_state_dict(args.src)
        state_dict, meta = convert(official, args.arch)
        check_loads(
            build_backbone(meta), backbone_part(state_dict),
            f'{family} arch {meta["arch"]!r}')
        save_checkpoint(state_dict, meta, args.dst, args.overwrite)
    except (CheckpointError, FileNotFoundError, FileExistsError) as err:
        parser.exit(1, f'error: {err}\n')
    print(f'converted {len(official)} tensors from {args.src}\n'
          f'  arch: {meta["arch"]}\n'
          f'  pretrain_img_size: {meta.get("pretrain_img_size")}\n'
          f'  num_classes: {meta.get("num_classes")}\n'
          f'saved {args.dst}')
