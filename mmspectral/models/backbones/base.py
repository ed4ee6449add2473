"""What every mmspectral backbone shares: the arch lookup, the arguments of
dense prediction and training (one meaning across families), weight
initialisation and pretrained loading."""
import math
import os.path as osp
import re
from abc import ABCMeta
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from mmspectral.checkpoint import (CheckpointError, check_dtypes, check_finite,
                                   is_remote, listing, raise_unless_fits,
                                   read_checkpoint, size_mismatches,
                                   state_dict_of)
from ..layers import (PositionEmbedding, ResizeCache, SpectralLayer,
                      pad_to_multiple, set_spectral_impl)
from ..layers.spectral import check_impl, mix_valid_regions

# the DeiT/timm initialisation of the official GFNet, AFNO and SpectFormer
# code (spectral weights and position embeddings initialise themselves)
DEIT_INIT = [
    dict(type='TruncNormal', layer='Linear', std=.02, bias=0.),
    dict(type='Constant', layer='LayerNorm', val=1., bias=0.),
]


# -- batch padding: each image's valid region ---------------------------------

#: Besides NaN, the data preprocessor's ``pad_value`` that marks padding for
#: ``valid_region`` (any value at or below it): finite, so a config holding it
#: survives mmengine's config dump and reload, which ``float('nan')`` does
#: not (it is written as ``nan``). No normalised image comes near it.
PAD_MARK = -1e38


def padding_marks(x: Tensor) -> Tensor:
    """Where ``x`` holds the padding mark: NaN or at most :data:`PAD_MARK`."""
    return torch.isnan(x) | (x <= PAD_MARK)


class ValidRegions:
    """Each image's valid top-left ``(h, w)`` on a batch of maps of one
    ``shape``: what the image alone gives there.

    Args:
        sizes (Sequence[tuple[int, int]]): One ``(h, w)`` per image.
        shape (tuple[int, int]): The spatial size of the batch's maps.
    """

    def __init__(self, sizes: Sequence[Tuple[int, int]],
                 shape: Sequence[int]):
        self.sizes = [(int(h), int(w)) for h, w in sizes]
        self.shape = (int(shape[0]), int(shape[1]))
        self._masks = {}

    def at(self, stride: int, shape: Sequence[int]) -> 'ValidRegions':
        """The regions on the ``shape`` maps of a ``stride`` times coarser
        layer: ``ceil(h / stride)`` (a padded strided convolution, or one
        after ``pad_to_multiple``, gives that much of an image alone)."""
        return ValidRegions([(-(-h // stride), -(-w // stride))
                             for h, w in self.sizes], shape)

    @property
    def filter_sizes(self) -> Optional[List[Tuple[int, int]]]:
        """The sizes for the spectral layers' ``valid_sizes``; None where
        every image fills the map (the plain path gives the same)."""
        if all(size == self.shape for size in self.sizes):
            return None
        return self.sizes

    def mask(self, device) -> Tensor:
        """``(B, H, W)``, True inside each image's region."""
        mask = self._masks.get(device)
        if mask is None:
            rows = torch.arange(self.shape[0], device=device)
            cols = torch.arange(self.shape[1], device=device)
            hw = torch.tensor(self.sizes, device=device)
            mask = (rows[None, :, None] < hw[:, 0, None, None]) & \
                (cols[None, None, :] < hw[:, 1, None, None])
            self._masks[device] = mask
        return mask

    def zero(self, x: Tensor, channels_last: bool = False) -> Tensor:
        """``x`` (``(B, C, H, W)``, or ``(B, H, W, C)``) with zeros outside
        each image's region."""
        if self.filter_sizes is None:
            return x
        mask = self.mask(x.device)
        mask = mask[..., None] if channels_last else mask[:, None]
        return x.masked_fill(~mask, 0)

    def mean(self, x: Tensor) -> Tensor:
        """The mean of ``(B, C, H, W)`` maps over each image's region,
        ``(B, C, 1, 1)``."""
        area = torch.tensor([h * w for h, w in self.sizes], device=x.device)
        return self.zero(x).sum((2, 3), keepdim=True) / area.view(
            -1, 1, 1, 1).to(x.dtype)


def zero_padding(x: Tensor, regions: Optional[ValidRegions],
                 channels_last: bool = False) -> Tensor:
    """``x`` with zeros outside the ``regions`` (unchanged for None)."""
    return x if regions is None else regions.zero(x, channels_last)


def filter_sizes(regions: Optional[ValidRegions]):
    """The spectral layers' ``valid_sizes`` for ``regions`` (None: none)."""
    return None if regions is None else regions.filter_sizes


def run_blocks(blocks: nn.Sequential, x: Tensor,
               regions: Optional[ValidRegions]) -> Tensor:
    """``blocks`` in turn, each given ``(x, regions)``; without regions
    called as the one module (whose hooks then see the stage)."""
    if regions is None:
        return blocks(x)
    for block in blocks:
        x = block(x, regions)
    return x


def run_padded(layers: Iterable[nn.Module], x: Tensor,
               regions: Optional[ValidRegions]
               ) -> Tuple[Tensor, Optional[ValidRegions]]:
    """Run channels-first ``layers`` in turn on ``x``; with ``regions``, the
    padding is zeroed before each convolution (as an image alone is padded)
    and the regions follow its stride. Returns the output and its regions."""
    for layer in layers:
        if regions is not None and isinstance(layer, nn.Conv2d):
            x = regions.at(1, x.shape[-2:]).zero(x)
            x = layer(x)
            regions = regions.at(layer.stride[0], x.shape[-2:])
        else:
            x = layer(x)
    return x, regions


def bounding_sizes(inside: Tensor) -> List[Optional[Tuple[int, int]]]:
    """Per image of a ``(B, H, W)`` bool map, the ``(h, w)`` of the top-left
    rectangle holding its True entries (None if it has none)."""
    sizes = []
    for image in inside:
        rows, cols = image.any(1).nonzero(), image.any(0).nonzero()
        size = (int(rows[-1]) + 1, int(cols[-1]) + 1) if len(rows) else None
        sizes.append(size)
    return sizes


def find_valid_regions(x: Tensor, name: str
                       ) -> Tuple[Tensor, ValidRegions]:
    """The batch with its padding marks (see :func:`padding_marks`) replaced
    by zeros, and each image's valid region: the top-left rectangle the
    marks leave.

    Raises:
        ValueError: A mark anywhere but in a bottom/right padding rectangle
            spanning every channel, or an image that is all padding.
    """
    marked = padding_marks(x)
    if not marked.any():
        return x, ValidRegions([x.shape[-2:]] * x.shape[0], x.shape[-2:])
    sizes = bounding_sizes(~marked.all(1))
    if None in sizes:
        raise ValueError(f'{name}: image {sizes.index(None)} of the batch is '
                         'all padding (NaN or the padding mark)')
    regions = ValidRegions(sizes, x.shape[-2:])
    outside = ~regions.mask(x.device)[:, None].expand_as(marked)
    if not torch.equal(marked, outside):
        wrong = (marked != outside).nonzero()[0].tolist()
        raise ValueError(
            f'{name}: NaN or the padding mark (<= {PAD_MARK:g}) at (image, '
            f'channel, row, column) {tuple(wrong)} is not part of a '
            'bottom/right padding region: with valid_region=True only the '
            "data preprocessor's padding may hold it (images with NaN or "
            'such values are not supported)')
    return x.masked_fill(marked, 0), regions


def check_no_padding_marks(x: Tensor, name: str):
    """Raise ValueError if ``x`` holds NaN or the padding mark while the
    backbone does not look for padding (in eager mode: a graph being traced,
    compiled or exported takes no data-dependent branch)."""
    if torch.jit.is_tracing() or torch.compiler.is_compiling() or \
            torch.compiler.is_exporting():
        return
    if padding_marks(x).any():
        raise ValueError(
            f'{name} got NaN or the padding mark (<= {PAD_MARK:g}) in its '
            'input with valid_region=False. If the data preprocessor marks '
            "the padding (its pad_value), set the backbone's "
            'valid_region=True (model.backbone.valid_region in the config); '
            'otherwise pad with 0 (data_preprocessor pad_value=0) and check '
            'the images for NaN.')


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


def conv_fan_out_init(module: nn.Module):
    """Convolutions normal with std ``sqrt(2 / fan_out)`` (fan-out per group),
    zero bias: the initialisation of PVTv2, SegFormer's MiT and hierarchical
    SpectFormer, which mmengine's ``Kaiming`` init gives only for ungrouped
    convolutions."""
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


class _FinishedAfterInit(ABCMeta):
    """Calls :meth:`SpectralBackbone._finish_build` once the outermost
    ``__init__`` has built every layer, so no family has to remember to."""

    def __call__(cls, *args, **kwargs):
        backbone = super().__call__(*args, **kwargs)
        backbone._finish_build()
        return backbone


class SpectralBackbone(BaseModule, metaclass=_FinishedAfterInit):
    """Base class of the mmspectral backbones: it takes the arguments every
    family shares (their meaning is written here once), resolves the arch,
    and after the family's ``__init__`` has built the layers it bounds the
    resize caches and freezes ``frozen_stages``.

    A family sets ``arch_zoo`` (the published variants), ``essential_keys``
    and ``optional_keys`` (the keys of a dict arch: what the variants differ
    in, i.e. the shapes of the weights, never training settings) and, where
    its defaults differ from the ones below, ``default_out_indices``,
    ``default_norm_cfg``, ``default_resize_mode`` and ``default_init_cfg``.
    Its ``__init__`` builds the layers from :attr:`arch_settings` and the
    shared attributes, and it implements :meth:`stage_parts` and
    ``forward``.

    Args:
        arch (str | dict): A name of the family's ``arch_zoo`` or a dict with
            its keys; an unknown name or a bad dict is a ValueError listing
            the valid choices.
        in_channels (int): Input channels. Defaults to 3.
        pretrain_img_size (int, optional): Image size the global filters and
            the position embedding are stored for (224 for the published
            ImageNet models, 384 for the fine-tuned ones); other input sizes
            get them resized. Defaults to None: the arch's
            ``pretrain_img_size`` if it has one, else 224. Families that
            store nothing for an image size (AFNO-MiT) refuse it.
        out_indices (int | Sequence[int]): Which outputs to return, negative
            indices counting from the end. Hierarchical families: stages
            0..3, of strides 4, 8, 16 and 32. Isotropic families (GFNet,
            AFNO, vanilla SpectFormer): blocks, as mmpretrain's ViT; every
            output is the stride-16 map, and the last block's output goes
            through the final norm (chain :class:`~mmspectral.models.necks.
            SimpleFPN` for four strides). Defaults to the family's
            ``default_out_indices``.
        frozen_stages (int): How much of the network to freeze: its
            parameters get ``requires_grad=False`` and its modules stay in
            eval mode. ``-1`` freezes nothing, ``0`` the stem (patch and
            position embedding), ``k`` in ``1..4`` the stem and stages
            ``1..k``. Isotropic archs split their blocks into four
            consecutive stages of (nearly) equal depth. Norms that only serve
            the outputs are never frozen. Defaults to -1.
        norm_eval (bool): Keep every norm layer with running statistics
            (BatchNorm, SyncBN) in eval mode while training, so its
            statistics stay those of the pretrained model. Defaults to False.
        with_cp (bool): Activation checkpointing in every block (recomputed
            in the backward pass, saving memory). Defaults to False.
        drop_rate (float): Dropout in the MLPs (and after the position
            embedding where there is one). Defaults to 0.
        drop_path_rate (float): Stochastic depth, increasing linearly over
            the blocks from 0 to this value. Defaults to 0.
        resize_mode (str, optional): How global filters adapt to other input
            sizes, see :class:`~mmspectral.models.layers.GlobalFilter`:
            ``'frequency'`` (GFNet, SpectFormer: their official code never
            resizes, so the more faithful interpolation is the default) or
            ``'bilinear'`` (HorNet's default: the official HorNet dense code
            resizes that way and its published detection / segmentation
            numbers depend on it). Families without global filters (AFNO)
            refuse it. Defaults to the family's ``default_resize_mode``.
        norm_cfg (dict, optional): The norm of the blocks. Defaults to the
            family's ``default_norm_cfg`` (``dict(type='LN', eps=1e-6)``).
        resize_cache_size (int): In eval mode, resized filters and position
            embeddings are kept for this many input sizes per layer, the
            least recently used going first; ``0`` recomputes them on every
            call. Memory grows with it (GFNet-H-S: about 0.25 GB per size at
            COCO's 800x1333), speed only at repeated sizes. Defaults to 2.
        spectral_impl (str): How every spectral layer computes its 2-D real
            DFT pair, see :mod:`mmspectral.models.layers.spectral`:
            ``'fft'`` (``torch.fft`` in float32, the official code's path),
            ``'dft'`` or ``'factored'`` (matrix products in the compute
            dtype: bf16/fp16 under autocast), or ``'auto'`` (the fastest of
            the three for the device, dtype and map size, timed once per
            size). Families without spectral layers (HorNet 7x7) refuse
            anything but the default. Defaults to ``'auto'``.
        valid_region (bool): Batch padding invariance: each image is
            computed over its own valid region, so its outputs there are
            those of the image alone (in eval mode, whatever its batch mates
            and ``size_divisor``). The data preprocessor must mark the
            padding: ``pad_value=float('nan')``, or :data:`PAD_MARK`
            (``-1e38``), which survives mmengine's config dump. The backbone
            finds each image's top-left rectangle, zeroes the padding, runs
            the spectral layers, the position embedding and every
            non-pointwise layer (convolutions, attention keys, pooling) on
            each image's region (``ceil(h / stride)`` at each stage) and
            returns zeros beyond it. Train-mode BatchNorm statistics still
            include the padding. With False, padding marks in the input are
            a ValueError. Defaults to False (the official behaviour).
        init_cfg (dict | list[dict], optional): Initialization config, as in
            mmpretrain: applied by ``init_weights()`` (the Runner calls it),
            not at construction. ``dict(type='Pretrained', checkpoint=PATH,
            prefix='backbone.')`` loads the backbone of a classification
            checkpoint, strictly: a checkpoint made for another arch (shapes
            that differ, weights this backbone has no place for, or backbone
            weights it lacks, such as the blocks of a deeper arch) stops with
            an error listing the keys; only the output norms a dense backbone
            adds may be missing from it. Defaults to the family's
            ``default_init_cfg`` (the official initialisation).
    """
    num_stages = 4
    arch_zoo: dict = {}
    essential_keys: tuple = ()
    optional_keys: tuple = ()
    default_out_indices: Union[int, Sequence[int]] = (0, 1, 2, 3)
    default_norm_cfg: dict = dict(type='LN', eps=1e-6)
    # None: the family has no global filters (resize_mode does not apply)
    default_resize_mode: Optional[str] = 'frequency'
    # False: nothing is stored for an image size (pretrain_img_size and the
    # resize cache do not apply)
    stores_sized_weights = True
    default_init_cfg = DEIT_INIT
    # convolutions get conv_fan_out_init after init_cfg (PVTv2 / MiT)
    fan_out_conv_init = False
    # weights a dense-prediction backbone has and a classification
    # checkpoint of the same arch lacks: output norms
    pretrained_missing_ok = re.compile(r'^norm\d*\.')
    # weights of a classification checkpoint a dense backbone has no use for
    pretrained_unused_ok = re.compile(r'^norm\d*\.')

    def __init__(self,
                 arch: Union[str, dict],
                 *,
                 in_channels: int = 3,
                 pretrain_img_size: Optional[int] = None,
                 out_indices: Union[int, Sequence[int], None] = None,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 resize_mode: Optional[str] = None,
                 norm_cfg: Optional[dict] = None,
                 resize_cache_size: int = 2,
                 spectral_impl: str = 'auto',
                 valid_region: bool = False,
                 init_cfg=None):
        name = type(self).__name__
        super().__init__(init_cfg=init_cfg if init_cfg is not None else
                         self.default_init_cfg)
        if resize_mode is not None and self.default_resize_mode is None:
            raise ValueError(f'{name} has no global filters: resize_mode '
                             'does not apply')
        if not self.stores_sized_weights and (pretrain_img_size is not None
                                              or resize_cache_size != 2):
            raise ValueError(
                f'{name} stores no filter or position embedding for an '
                'image size: pretrain_img_size and resize_cache_size do not '
                'apply')
        if not -1 <= frozen_stages <= self.num_stages:
            raise ValueError(f'frozen_stages must be in -1..{self.num_stages},'
                             f' got {frozen_stages}')
        ResizeCache(resize_cache_size)  # fail early on a bad size
        self.spectral_impl = check_impl(spectral_impl)
        self.valid_region = valid_region
        self.arch_name = arch
        self.arch_settings = self.check_arch(arch)
        self.embed_dims = self.stage_channels(self.arch_settings)
        self.in_channels = in_channels
        self.pretrain_img_size = pretrain_img_size or self.arch_settings.get(
            'pretrain_img_size', 224)
        self.out_indices = normalize_out_indices(
            self.default_out_indices if out_indices is None else out_indices,
            len(self.embed_dims), name)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.drop_rate = drop_rate
        self.drop_path_rate = drop_path_rate
        self.resize_mode = resize_mode or self.default_resize_mode
        self.norm_cfg = dict(norm_cfg or self.default_norm_cfg)
        self.resize_cache_size = resize_cache_size

    @classmethod
    def check_arch(cls, arch: Union[str, dict]) -> dict:
        """The settings of ``arch``; raises ValueError for an unknown name,
        a dict arch with missing or unknown keys, or per-stage settings that
        are not one per stage."""
        settings = resolve_arch(arch, cls.arch_zoo, cls.__name__,
                                cls.essential_keys, cls.optional_keys)
        for key in ('embed_dims', 'depths'):
            value = settings.get(key)
            if value is not None and (isinstance(value, int)
                                      or len(value) != cls.num_stages):
                raise ValueError(
                    f'{cls.__name__} arch needs four embed_dims and four '
                    f'depths, got {settings.get("embed_dims")!r} and '
                    f'{settings.get("depths")!r}')
        return settings

    @classmethod
    def stage_channels(cls, settings: dict) -> List[int]:
        """The channels of each output the arch can give."""
        return list(settings['embed_dims'])

    @property
    def out_channels(self) -> List[int]:
        """The channels of each returned output."""
        return [self.embed_dims[i] for i in self.out_indices]

    def stage_drop_path_rates(self, depths: Sequence[int]
                              ) -> List[List[float]]:
        """Per stage, the stochastic depth of each block: linear from 0 to
        ``drop_path_rate`` over all the blocks."""
        rates = np.linspace(0, self.drop_path_rate, sum(depths)).tolist()
        bounds = np.cumsum([0, *depths])
        return [rates[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def add_output_norms(self, build=None):
        """``norm{i}`` for every output ``i``: the norms that only serve the
        outputs (``build(norm_cfg, channels)`` makes one; mmcv's
        ``build_norm_layer`` by default)."""
        for i in self.out_indices:
            norm = build(self.norm_cfg, self.embed_dims[i]) if build else \
                build_norm_layer(self.norm_cfg, self.embed_dims[i])[1]
            self.add_module(f'norm{i}', norm)

    # -- the ViT / GFNet stem ------------------------------------------------

    def build_patch_embed(self, embed_dims: int, patch_size: int):
        """``patch_embed`` (a ``patch_size`` strided convolution),
        ``pos_embed`` (stored for the ``pretrain_img_size`` grid) and
        ``pos_drop``: the ViT/GFNet stem."""
        self.patch_size = patch_size
        self.patch_embed = nn.Conv2d(self.in_channels, embed_dims, patch_size,
                                     patch_size)
        self.pos_embed = PositionEmbedding(
            embed_dims, self.pretrain_img_size // patch_size)
        self.pos_drop = nn.Dropout(self.drop_rate)

    def embed(self, x: Tensor, regions: Optional[ValidRegions] = None
              ) -> Tuple[Tensor, Optional[ValidRegions]]:
        """Image batch ``(B, C, H, W)`` -> position-embedded ``(B, h, w, C')``
        tokens and their valid regions (``regions`` are the image's, None
        without ``valid_region``); the image is zero-padded to a multiple of
        the patch size."""
        x = self.patch_embed(pad_to_multiple(x, self.patch_size))
        x = x.permute(0, 2, 3, 1)
        if regions is not None:
            regions = regions.at(self.patch_size, x.shape[1:3])
        sizes = filter_sizes(regions)
        x = self.pos_embed(x) if sizes is None else mix_valid_regions(
            x, sizes, (1, 2), self.pos_embed)
        return self.pos_drop(x), regions

    def input_regions(self, x: Tensor
                      ) -> Tuple[Tensor, Optional[ValidRegions]]:
        """Check the image batch; with ``valid_region``, the batch with its
        padding zeroed and each image's valid region (else None)."""
        self.check_input(x)
        name = type(self).__name__
        if not self.valid_region:
            check_no_padding_marks(x, name)
            return x, None
        return find_valid_regions(x, name)

    def _finish_build(self):
        """After the family's ``__init__``: the resize-cache bound and the
        frozen stages."""
        self.set_resize_cache_size(self.resize_cache_size)
        self._set_spectral_impl()
        self._freeze_stages()

    def _set_spectral_impl(self):
        if not any(isinstance(m, SpectralLayer) for m in self.modules()):
            if self.spectral_impl != 'auto':
                raise ValueError(
                    f'this {type(self).__name__} arch has no spectral layers: '
                    f'spectral_impl={self.spectral_impl!r} does not apply')
            return
        set_spectral_impl(self, self.spectral_impl)

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

    @property
    def pretrained_source(self) -> str:
        """Where a pretrained checkpoint comes from (for messages)."""
        family = type(self).__module__.rsplit('.', 1)[-1]
        return ('Convert the official weights with '
                f'tools/model_converters/{family}2mmspectral.py')

    def init_weights(self):
        """Load the ``Pretrained`` checkpoint of ``init_cfg``, or initialise
        the weights as ``init_cfg`` says."""
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            self.load_pretrained(cfg['checkpoint'], cfg.get('prefix'))
            self._is_init = True
            return
        super().init_weights()
        if self.fan_out_conv_init:
            self.apply(conv_fan_out_init)

    def load_pretrained(self, checkpoint: str, prefix: str = None):
        """Load ``checkpoint`` (the entries under ``prefix``, if given).

        Every weight of this backbone must come from the checkpoint, except
        those :attr:`pretrained_missing_ok` names (the output norms of a
        dense backbone); every checkpoint weight must have a place here,
        except those :attr:`pretrained_unused_ok` names. Filters and
        position embeddings stored for another size are resized.

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
    """A ViT-style backbone (GFNet, AFNO, vanilla SpectFormer): a patch
    embedding with a learned position embedding (stored for the
    ``pretrain_img_size`` grid), a sequence of blocks on one
    stride-``patch_size`` map, and a final norm; the family builds
    ``self.blocks``.

    ``out_indices`` are block indices, as in mmpretrain's ViT (default -1:
    the last block, through the final norm). For dense heads chain
    :class:`~mmspectral.models.necks.SimpleFPN`, which makes strides 4..32
    of the stride-16 map. For ``frozen_stages`` the blocks count as four
    consecutive stages of (nearly) equal depth.

    The arch keys ``embed_dims`` and ``depths`` are ints; ``patch_size`` is
    optional (16).
    """
    default_out_indices = -1

    def __init__(self, arch: Union[str, dict], **kwargs):
        super().__init__(arch, **kwargs)
        dims = self.arch_settings['embed_dims']
        self.build_patch_embed(dims, self.arch_settings.get('patch_size', 16))
        self.norm = build_norm_layer(self.norm_cfg, dims)[1]

    @classmethod
    def check_arch(cls, arch: Union[str, dict]) -> dict:
        settings = resolve_arch(arch, cls.arch_zoo, cls.__name__,
                                cls.essential_keys, cls.optional_keys)
        dims, depth = settings['embed_dims'], settings['depths']
        if not isinstance(dims, int) or not isinstance(depth, int):
            raise ValueError(f'{cls.__name__} arch: embed_dims and depths '
                             f'must be ints (the hierarchical archs are '
                             f'{cls.__name__}H), got {dims!r} and {depth!r}')
        return settings

    @classmethod
    def stage_channels(cls, settings: dict) -> List[int]:
        return [settings['embed_dims']] * settings['depths']

    @property
    def native_grid(self) -> int:
        """The side of the token grid at ``pretrain_img_size``."""
        return self.pretrain_img_size // self.patch_size

    def stage_parts(self, index: int) -> list:
        if index == 0:
            return [self.patch_embed, self.pos_embed]
        quarters = np.array_split(np.arange(len(self.blocks)), 4)
        return [self.blocks[int(i)] for i in quarters[index - 1]]

    def forward(self, x: Tensor) -> tuple:
        """Image batch ``(B, C, H, W)`` -> the ``(B, C', h, w)`` maps of the
        ``out_indices`` blocks; the image is zero-padded to a multiple of
        the patch size. Each block takes ``(x, regions)``."""
        x, regions = self.embed(*self.input_regions(x))
        outs = []
        for i, block in enumerate(self.blocks):
            x = block(x, regions)
            if i == len(self.blocks) - 1:
                x = self.norm(x)
            if i in self.out_indices:
                out = zero_padding(x, regions, channels_last=True)
                outs.append(out.permute(0, 3, 1, 2).contiguous())
        return tuple(outs)
