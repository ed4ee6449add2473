"""What every mmspectral backbone shares: arch lookup and the dense-prediction
arguments (``out_indices``, ``frozen_stages``, ``norm_eval``), with one
meaning across families."""
import math
import os.path as osp
import re
from typing import Iterable, List, Optional, Sequence, Union

import numpy as np
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from mmspectral.checkpoint import (CheckpointError, check_dtypes, check_finite,
                                   is_remote, listing, raise_unless_fits,
                                   read_checkpoint, size_mismatches,
                                   state_dict_of)
from ..layers import (PositionEmbedding, ResizeCache, SimpleFeaturePyramid,
                      pad_to_multiple)


def resolve_arch(arch: Union[str, dict], arch_zoo: dict, family: str,
                 essential_keys: Iterable[str],
                 optional_keys: Iterable[str] = ()) -> dict:
    """Look ``arch`` up in ``arch_zoo`` or check a dict arch's keys.

    Raises:
        ValueError: An unknown arch name (the message lists the valid ones),
            or a dict arch with missing or unknown keys.
    """
    if isinstance(arch, str):
        key = arch.lower()
        if key not in arch_zoo:
            raise ValueError(f'Unknown {family} arch {arch!r}; choose one of '
                             f'{sorted(arch_zoo)} or pass a dict with keys '
                             f'{sorted(essential_keys)}')
        return dict(arch_zoo[key])
    if not isinstance(arch, dict):
        raise TypeError(f'{family} arch must be a str or a dict, got '
                        f'{type(arch).__name__}')
    missing = set(essential_keys) - set(arch)
    unknown = set(arch) - set(essential_keys) - set(optional_keys)
    if missing or unknown:
        raise ValueError(
            f'{family} dict arch: missing keys {sorted(missing)}, unknown '
            f'keys {sorted(unknown)}; essential keys are '
            f'{sorted(essential_keys)}, optional keys {sorted(optional_keys)}')
    return dict(arch)


def deit_init(module: nn.Module):
    """The DeiT/timm initialisation the official GFNet, AFNO and SpectFormer
    code apply: truncated-normal linear weights (std 0.02), zero biases, unit
    LayerNorms. (Spectral weights and position embeddings initialise
    themselves.)"""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def conv_fan_out_init(module: nn.Module):
    """Convolutions normal with std ``sqrt(2 / fan_out)``, zero bias: the
    initialisation of PVTv2, SegFormer's MiT and hierarchical SpectFormer."""
    if isinstance(module, nn.Conv2d):
        fan_out = module.kernel_size[0] * module.kernel_size[1] * \
            module.out_channels // module.groups
        nn.init.normal_(module.weight, 0, math.sqrt(2.0 / fan_out))
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def normalize_out_indices(out_indices: Union[int, Sequence[int]],
                          num_outs: int, family: str) -> tuple:
    """Sorted out indices in ``0..num_outs-1``; negative ones count from the
    end."""
    if isinstance(out_indices, int):
        out_indices = [out_indices]
    result = []
    for index in out_indices:
        if not -num_outs <= index < num_outs:
            raise ValueError(f'{family}: out index {index} is out of range '
                             f'for {num_outs} outputs')
        result.append(index % num_outs)
    return tuple(sorted(set(result)))


class SpectralBackbone(BaseModule):
    """Base class of the mmspectral backbones, and the one place the
    arguments they share are defined; each family's docstring refers here.

    Subclasses set ``arch_zoo`` (the published variants), ``essential_keys``
    and ``optional_keys`` (the keys of a dict arch: what the published
    variants differ in, i.e. the shapes of the weights, never training
    settings), build their layers, and implement :meth:`stage_parts`.

    Shared arguments of every family (not all are taken by this base):

    * ``arch`` (str | dict): a name of ``arch_zoo`` or a dict with the
      family's keys; an unknown name or a bad dict is a ValueError listing
      the valid choices.
    * ``out_indices`` (Sequence[int]): outputs from 0..3, of strides 4, 8,
      16 and 32.
    * ``with_cp`` (bool): activation checkpointing in every block.
    * ``drop_rate`` (float): dropout in the MLPs (and after the position
      embedding where there is one).
    * ``drop_path_rate`` (float): stochastic depth, increasing linearly over
      the blocks up to this value.
    * ``resize_mode`` (str): how global filters adapt to other input sizes,
      see :class:`~mmspectral.models.layers.GlobalFilter`. ``'frequency'``
      (GFNet, SpectFormer: their official code never resizes, so the more
      faithful interpolation is the default) or ``'bilinear'`` (HorNet's
      default, because the official HorNet dense code resizes that way and
      its published detection / segmentation numbers depend on it).
    * ``norm_cfg`` (dict): the norm of the blocks.

    Args:
        frozen_stages (int): How much of the network to freeze: its parameters
            get ``requires_grad=False`` and its modules stay in eval mode.
            ``-1`` freezes nothing, ``0`` the stem (patch embedding and
            position embedding), ``k`` in ``1..4`` the stem and stages
            ``1..k``.
            Isotropic archs split their blocks into four consecutive stages of
            (nearly) equal depth. Norms that only serve the outputs and
            pyramid layers are never frozen.
        norm_eval (bool): Keep every norm layer with running statistics
            (BatchNorm, SyncBN) in eval mode while training, so its statistics
            stay those of the pretrained model.
        init_cfg (dict, optional): Initialization config; use
            ``dict(type='Pretrained', checkpoint=PATH, prefix='backbone.')``
            to load the backbone of a classification checkpoint. Loading is
            strict: a checkpoint made for another arch (shapes that differ,
            weights this backbone has no place for, or backbone weights it
            lacks, such as the blocks of a deeper arch) stops with an error
            listing the keys; only the weights a dense backbone adds (output
            norms, pyramid layers) may be missing from it.
        resize_cache_size (int): In eval mode, resized filters and position
            embeddings are kept for this many input sizes per layer, the
            least recently used going first; ``0`` recomputes them on every
            call. Memory grows with it (GFNet-H-S: about 0.25 GB per size at
            COCO's 800x1333), speed only at repeated sizes. Families without
            resized weights (AFNO-MiT) do not take it.
    """
    num_stages = 4
    arch_zoo: dict = {}
    essential_keys: tuple = ()
    optional_keys: tuple = ()
    # weights a dense-prediction backbone has and a classification
    # checkpoint of the same arch lacks: output norms and pyramid layers
    pretrained_missing_ok = re.compile(r'^(norm\d*|pyramid)\.')
    # weights of a classification checkpoint a dense backbone has no use for
    pretrained_unused_ok = re.compile(r'^(norm\d*|pyramid)\.')

    @property
    def pretrained_source(self) -> str:
        """Where a pretrained checkpoint comes from (for messages)."""
        family = type(self).__module__.rsplit('.', 1)[-1]
        return ('Convert the official weights with '
                f'tools/model_converters/{family}2mmspectral.py')

    @classmethod
    def check_arch(cls, arch: Union[str, dict]) -> dict:
        """The settings of ``arch``; raises ValueError for an unknown name
        or a dict arch with missing or unknown keys."""
        return resolve_arch(arch, cls.arch_zoo, cls.__name__,
                            cls.essential_keys, cls.optional_keys)

    def __init__(self, frozen_stages: int = -1, norm_eval: bool = False,
                 init_cfg=None, resize_cache_size: int = 2):
        super().__init__(init_cfg=init_cfg)
        if not -1 <= frozen_stages <= self.num_stages:
            raise ValueError(f'frozen_stages must be in -1..{self.num_stages},'
                             f' got {frozen_stages}')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        ResizeCache(resize_cache_size)  # fail early on a bad size
        self.resize_cache_size = resize_cache_size

    def finish_build(self):
        """What every family's ``__init__`` ends with, once its layers
        exist: the resize-cache bound and the frozen stages."""
        self.set_resize_cache_size(self.resize_cache_size)
        self._freeze_stages()

    def stage_parts(self, index: int) -> List[Union[nn.Module, nn.Parameter]]:
        """Modules and parameters of the stem (``index=0``) or of stage
        ``index`` (1-based)."""
        raise NotImplementedError

    def _freeze_stages(self):
        for index in range(self.frozen_stages + 1):
            for part in self.stage_parts(index):
                if isinstance(part, nn.Parameter):
                    part.requires_grad = False
                    continue
                part.eval()
                for param in part.parameters():
                    param.requires_grad = False

    # -- the ViT / GFNet stem ------------------------------------------------

    def build_patch_embed(self, in_channels: int, embed_dims: int,
                          patch_size: int, pretrain_img_size: int,
                          drop_rate: float = 0.):
        """``patch_embed`` (a ``patch_size`` strided convolution),
        ``pos_embed`` (stored for the ``pretrain_img_size`` grid) and
        ``pos_drop``: the ViT/GFNet stem."""
        self.in_channels = in_channels
        self.patch_size = patch_size
        self.patch_embed = nn.Conv2d(in_channels, embed_dims, patch_size,
                                     patch_size)
        self.pos_embed = PositionEmbedding(embed_dims,
                                           pretrain_img_size // patch_size)
        self.pos_drop = nn.Dropout(drop_rate)

    def embed(self, x):
        """Image batch ``(B, C, H, W)`` -> position-embedded ``(B, h, w, C')``
        tokens; the image is zero-padded to a multiple of the patch size."""
        self.check_input(x)
        x = self.patch_embed(pad_to_multiple(x, self.patch_size))
        return self.pos_drop(self.pos_embed(x.permute(0, 2, 3, 1)))

    def init_weights(self):
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            self.load_pretrained(cfg['checkpoint'], cfg.get('prefix'))
            self._is_init = True
        else:
            super().init_weights()

    def load_pretrained(self, checkpoint: str, prefix: str = None):
        """Load ``checkpoint`` (the entries under ``prefix``, if given).

        Every weight of this backbone must come from the checkpoint, except
        those :attr:`pretrained_missing_ok` names (the dense-prediction
        adapters: output norms and pyramid layers); every checkpoint weight
        must have a place here, except those :attr:`pretrained_unused_ok`
        names. Filters and position embeddings stored for another size are
        resized.

        Raises:
            FileNotFoundError: the checkpoint is not there.
            CheckpointError: it is unreadable, holds NaN/inf or data-less
                weights, or does not fit this arch (shapes, or integer
                tensors for floating-point weights; the message lists the
                keys).
        """
        name = type(self).__name__
        if not is_remote(checkpoint) and not osp.isfile(checkpoint):
            raise FileNotFoundError(
                f'{name}: pretrained checkpoint {checkpoint!r} not found. '
                f'{self.pretrained_source}, or set the backbone\'s '
                'init_cfg=None to train from scratch.')
        state = state_dict_of(read_checkpoint(checkpoint), checkpoint, prefix)
        check_finite(state, checkpoint)
        what = f'this {name} arch {self.arch_name!r}'
        check_dtypes(self.state_dict(), state, what, checkpoint)
        try:
            result = self.load_state_dict(state, strict=False)
        except RuntimeError as err:
            raise CheckpointError(
                f'{checkpoint} does not fit {what}:\n' + listing(
                    'shape mismatches (checkpoint vs model)',
                    size_mismatches(err))) from None
        unused_ok = [
            k for k in result.unexpected_keys
            if self.pretrained_unused_ok.search(k)
        ]
        raise_unless_fits(
            what,
            checkpoint,
            missing=result.missing_keys,
            unexpected=[
                k for k in result.unexpected_keys if k not in unused_ok
            ],
            missing_ok=self.pretrained_missing_ok)
        adapters = [
            k for k in result.missing_keys
            if not k.endswith('num_batches_tracked')
        ]
        MMLogger.get_current_instance().info(
            f'{name}: loaded {len(state) - len(unused_ok)} tensors from '
            f'{checkpoint}' +
            (f'; skipped {len(unused_ok)} it has no use for here'
             if unused_ok else '') +
            (f'; initialised as new: {adapters}' if adapters else ''))

    def resize_caches(self) -> List[ResizeCache]:
        """The :class:`ResizeCache` of every layer."""
        return [
            m.resize_cache for m in self.modules()
            if isinstance(getattr(m, 'resize_cache', None), ResizeCache)
        ]

    def set_resize_cache_size(self, size: int):
        """Keep resized filters and position embeddings for at most ``size``
        input sizes in every layer (see :class:`ResizeCache`)."""
        for cache in self.resize_caches():
            cache.max_entries = size

    def check_input(self, x: Tensor):
        """Raise ValueError unless ``x`` is a non-empty ``(B, C, H, W)``
        batch with this backbone's ``in_channels``."""
        name = type(self).__name__
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'{name} expects a (B, {self.in_channels}, H, W) image batch,'
                f' got shape {tuple(x.shape)}')
        if x.numel() == 0:
            raise ValueError(
                f'{name} got an empty image batch of shape {tuple(x.shape)}: '
                'the batch size, height and width must all be at least 1')
        if not (x.is_floating_point()):
            raise ValueError(
                f'{name} expects a floating-point image batch, got '
                f'{x.dtype}; normalise the images first (the data '
                'preprocessor does this)')

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self


class IsotropicBackbone(SpectralBackbone):
    """A ViT-style backbone: the patch embedding stem, a sequence of blocks
    on one stride-``patch_size`` map, a final norm and the
    :class:`SimpleFeaturePyramid`, which turns that map into the four
    strides 4..32 so FPN necks work unchanged (GFNet, AFNO, vanilla
    SpectFormer).

    For ``frozen_stages`` the blocks count as four consecutive stages of
    (nearly) equal depth. Subclasses build their blocks and call
    :meth:`build_isotropic_layers`.

    A family whose hierarchical archs once lived in its isotropic class
    names that class in ``hierarchical_class`` (a registered name): building
    the isotropic class with a hierarchical arch (a name of that class's
    zoo, or a dict arch whose ``embed_dims`` is a list) builds the
    hierarchical class instead, so configs written before the split keep
    working.
    """
    hierarchical_class: Optional[str] = None

    def __new__(cls, arch: Union[str, dict, None] = None, *args, **kwargs):
        name = cls.__dict__.get('hierarchical_class')
        if name is not None and arch is not None:
            from mmspectral.registry import MODELS
            target = MODELS.get(name)
            if isinstance(arch, str) and arch.lower() in target.arch_zoo or \
                    isinstance(arch, dict) and not isinstance(
                        arch.get('embed_dims'), int):
                return target(arch, *args, **kwargs)
        return super().__new__(cls)

    def build_isotropic_layers(self, blocks: nn.Sequential, embed_dims: int,
                               norm_cfg: dict, pyramid_norm_cfg: dict):
        """``blocks``, the final ``norm`` and the feature pyramid (the
        stem is :meth:`build_patch_embed`)."""
        self.embed_dims = [embed_dims]
        self.blocks = blocks
        self.norm = build_norm_layer(norm_cfg, embed_dims)[1]
        self.pyramid = SimpleFeaturePyramid(embed_dims, self.out_indices,
                                            pyramid_norm_cfg)
        self.out_channels = [
            self.pyramid.out_channels[i] for i in self.out_indices
        ]
        self._stage_blocks = np.array_split(np.arange(len(blocks)), 4)

    def stage_parts(self, index: int) -> list:
        if index == 0:
            return [self.patch_embed, self.pos_embed]
        return [self.blocks[int(i)] for i in self._stage_blocks[index - 1]]

    def forward(self, x: Tensor) -> tuple:
        x = self.norm(self.blocks(self.embed(x))).permute(0, 3, 1, 2)
        return tuple(self.pyramid(x.contiguous()))
