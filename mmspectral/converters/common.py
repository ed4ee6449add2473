"""Reading official checkpoints and writing mmpretrain-style ones."""
import argparse
import errno
import json
import math
import os
import os.path as osp
import re
import uuid
from collections import OrderedDict
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import torch
from torch import Tensor

from mmspectral.checkpoint import (SAFETENSORS_META_KEY, CheckpointError,
                                   check_finite, check_fits, read_checkpoint,
                                   state_dict_of)
from mmspectral.version import __version__

# official ViT-style checkpoints (isotropic GFNet, AFNONet, SpectFormer)
ISOTROPIC_RULES = [
    (r'patch_embed\.proj\.(weight|bias)', r'backbone.patch_embed.\1'),
    (r'pos_embed', 'backbone.pos_embed.weight'),
    (r'blocks\.(\d+)\.(.+)', r'backbone.blocks.\1.\2'),
    (r'norm\.(weight|bias)', r'backbone.norm.\1'),
    (r'head\.(weight|bias)', r'head.fc.\1'),
]


# the heads of the official dense checkpoints (mmdet 2.x FPN, RPN, cascade
# box and mask heads; mmseg 0.x UperNet and FCN heads), whose key names
# mmdet 3 / mmseg 1 kept: each is placed unchanged, and a key none of these
# rules names stops the conversion
_CONV_MODULE = r'(conv\.(weight|bias)|bn\.(weight|bias|running_mean|running_var|num_batches_tracked))'  # noqa
DENSE_HEAD_RULES = [
    (rf'neck\.(lateral|fpn)_convs\.\d+\.{_CONV_MODULE}', r'\g<0>'),
    (r'rpn_head\.rpn_(conv|cls|reg)\.(weight|bias)', r'\g<0>'),
    (rf'roi_head\.bbox_head\.\d+\.(shared_convs\.\d+\.{_CONV_MODULE}|'
     r'shared_fcs\.\d+\.(weight|bias)|fc_(cls|reg)\.(weight|bias))', r'\g<0>'),
    (rf'roi_head\.mask_head\.\d+\.(convs\.\d+\.{_CONV_MODULE}|'
     r'(upsample|conv_logits)\.(weight|bias))', r'\g<0>'),
    (rf'decode_head\.(psp_modules\.\d+\.1|bottleneck|lateral_convs\.\d+|'
     rf'fpn_convs\.\d+|fpn_bottleneck)\.{_CONV_MODULE}', r'\g<0>'),
    (rf'auxiliary_head\.convs\.\d+\.{_CONV_MODULE}', r'\g<0>'),
    (r'(decode|auxiliary)_head\.conv_seg\.(weight|bias)', r'\g<0>'),
]


def dense_task(state_dict: Dict[str, Tensor]) -> Optional[str]:
    """``'detection'`` or ``'segmentation'`` for a detector's or a
    segmentor's state dict (by its heads), None for a backbone's."""
    if any(k.startswith(('roi_head.', 'rpn_head.')) for k in state_dict):
        return 'detection'
    if any(k.startswith('decode_head.') for k in state_dict):
        return 'segmentation'
    return None


def dense_num_classes(state_dict: Dict[str, Tensor]) -> int:
    """The class count of a detector's box head or a segmentor's decode
    head."""
    weight = state_dict.get('roi_head.bbox_head.0.fc_cls.weight')
    if weight is not None:
        return weight.shape[0] - 1  # the background class
    return state_dict['decode_head.conv_seg.weight'].shape[0]


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

    Accepts a dict with ``'model'``, ``'state_dict'`` or ``'model_ema'``, or
    a bare state dict (also a safetensors file), and strips a ``module.``
    prefix left by DDP. Loading is weights-only
    (:func:`mmspectral.checkpoint.read_checkpoint`); ``argparse.Namespace``
    (the training args DeiT-style scripts save) is allowed.

    Raises:
        CheckpointError: Also for NaN, infinite or meta (data-less)
            tensors, naming them.
    """
    checkpoint = read_checkpoint(path, safe_globals=[argparse.Namespace])
    state = state_dict_of(
        checkpoint, path, keys=('model', 'state_dict', 'model_ema'))
    check_finite(state, path)
    return state


# key patterns that tell the families' official checkpoints apart
_FAMILY_PATTERNS = (
    ('HorNet', (r'(backbone\.)?downsample_layers\.0\.0\.weight',
                r'.*\.gnconv\..*')),
    ('AFNO', (r'blocks\.\d+\.filter\.w1', )),
    ('SpectFormer', (r'block1\.\d+\..*', )),
    ('SpectFormer', (r'blocks\.\d+\.attn\..*',
                     r'blocks\.\d+\.filter\.complex_weight')),
    ('GFNet', (r'blocks\.(\d+\.)?\d+\.filter\.complex_weight', )),
)


def detect_family(state_dict: Dict[str, Tensor]) -> Optional[str]:
    """The family whose official (or mmpretrain HorNet) checkpoint
    ``state_dict`` is, by its key names; ``'mmspectral'`` for a converted
    one; None if unknown."""
    keys = list(state_dict)
    for family, patterns in _FAMILY_PATTERNS:
        if all(any(re.fullmatch(p, k) for k in keys) for p in patterns):
            if family == 'GFNet' and any('.attn.' in k for k in keys):
                continue
            return family
    if keys and all(k.startswith(('backbone.', 'head.')) for k in keys):
        return 'mmspectral'
    return None


def check_family(state_dict: Dict[str, Tensor], family: str, path: str):
    """Refuse a checkpoint of another family (or an already converted one)
    before converting it as ``family``."""
    found = detect_family(state_dict)
    if found is None or found == family:
        return
    if found == 'mmspectral':
        raise CheckpointError(
            f'{path} is already an mmspectral checkpoint (backbone.* keys): '
            'load it directly, with init_cfg=dict(type=\'Pretrained\', '
            "checkpoint=..., prefix='backbone.') or load_from")
    raise CheckpointError(
        f'{path} is a {found} checkpoint, not a {family} one: convert it '
        f'with tools/model_converters/{found.lower()}2mmspectral.py')


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


def classifier_meta(sd: Dict[str, Tensor], arch, img_size: int,
                    source: str) -> dict:
    """The converted checkpoint's ``meta`` of an official classifier:
    ``arch``, ``pretrain_img_size``, ``num_classes`` (0 without a head)
    and the official repository ``source``."""
    head = sd.get('head.weight')
    return dict(arch=arch, pretrain_img_size=img_size,
                num_classes=0 if head is None else head.shape[0],
                source=source)


def check_loads(model: torch.nn.Module, state_dict: Dict[str, Tensor],
                what: str, source: str = 'the checkpoint'):
    """Load ``state_dict`` strictly into ``model`` or raise an error naming
    the missing, unexpected and mis-shaped keys."""
    check_fits(model.state_dict(), state_dict, what, source)
    model.load_state_dict(state_dict, strict=True)


def save_checkpoint(state_dict: Dict[str, Tensor], meta: dict, dst: str,
                    overwrite: bool = False) -> str:
    """Write a converted checkpoint to ``dst``: a safetensors file (the
    tensors, and ``meta`` as JSON metadata) when the name ends with
    ``.safetensors``, else ``torch.save`` of ``{'state_dict': ...,
    'meta': ...}``.

    The file is written beside ``dst`` under a temporary name, with the
    permissions any new file gets (the umask), and moved into place only
    when complete; an existing ``dst`` is never replaced unless
    ``overwrite`` (not even one that appears while writing).

    Raises:
        FileExistsError: ``dst`` exists and ``overwrite`` is not set.
        CheckpointError: ``dst`` cannot be written (read-only folder, full
            disk, ...); nothing is left behind, and an existing ``dst`` is
            unchanged.
    """
    if osp.exists(dst) and not overwrite:
        raise FileExistsError(
            f'{dst} exists; pass --overwrite to replace it')
    meta = dict(meta, mmspectral_version=__version__)
    tmp = osp.join(osp.dirname(osp.abspath(dst)),
                   f'.{osp.basename(dst)}.{uuid.uuid4().hex[:8]}.tmp')
    try:
        os.makedirs(osp.dirname(tmp), exist_ok=True)
        with _create_file(tmp) as f:
            if dst.endswith('.safetensors'):
                f.write(_safetensors_bytes(state_dict, meta))
            else:
                torch.save({'state_dict': state_dict, 'meta': meta}, f)
            f.flush()
            os.fsync(f.fileno())
        _move_into_place(tmp, dst, overwrite)
    except FileExistsError:
        raise
    except (OSError, RuntimeError) as err:
        reason = os.strerror(err.errno) if getattr(err, 'errno', None) \
            else str(err).splitlines()[0]
        raise CheckpointError(
            f'cannot write {dst}: {reason}; nothing was written') from None
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return dst


def _create_file(path: str):
    """A new binary file at ``path`` with the mode any new file gets (0o666
    less the umask); an existing ``path`` is an error."""
    return os.fdopen(
        os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), 'wb')


def _safetensors_bytes(state_dict: Dict[str, Tensor], meta: dict) -> bytes:
    from safetensors.torch import save
    tensors = {
        key: value.detach().clone(memory_format=torch.contiguous_format)
        for key, value in state_dict.items()
    }  # contiguous and sharing no memory, as safetensors requires
    return save(tensors, metadata={
        'format': 'pt',
        SAFETENSORS_META_KEY: json.dumps(meta, default=str)
    })


def _move_into_place(tmp: str, dst: str, overwrite: bool):
    """Rename ``tmp`` to ``dst``; without ``overwrite``, atomically only if
    ``dst`` does not exist (a hard link fails on an existing name)."""
    if overwrite:
        os.replace(tmp, dst)
        return
    try:
        os.link(tmp, dst)
    except FileExistsError:
        raise FileExistsError(
            f'{dst} appeared while converting; it was left as it is (pass '
            '--overwrite to replace it)') from None
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV,
                             errno.EMLINK):
            raise
        # a file system without hard links: claim the name, then fill it
        _create_file(dst).close()
        os.replace(tmp, dst)


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
    parser.add_argument(
        'dst', help='output path: .pth, or .safetensors (weights with '
        'nothing to unpickle)')
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
        check_family(official, family, args.src)
        state_dict, meta = convert(official, args.arch)
        check_loads(
            build_backbone(meta), backbone_part(state_dict),
            f'{family} arch {meta["arch"]!r}', args.src)
        save_checkpoint(state_dict, meta, args.dst, args.overwrite)
    except (CheckpointError, FileNotFoundError, FileExistsError) as err:
        parser.exit(1, f'error: {err}\n')
    print(f'converted {len(official)} tensors from {args.src}\n'
          f'  arch: {meta["arch"]}\n'
          f'  pretrain_img_size: {meta.get("pretrain_img_size")}\n'
          f'  num_classes: {meta.get("num_classes")}\n'
          f'saved {args.dst}')
