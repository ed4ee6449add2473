"""What every mmspectral backbone shares: arch lookup and the dense-prediction
arguments (``out_indices``, ``frozen_stages``, ``norm_eval``), with one
meaning across families."""
import os.path as osp
import re
from typing import Iterable, List, Sequence, Union

import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from mmengine.runner.checkpoint import _load_checkpoint
from torch.nn.modules.batchnorm import _BatchNorm

from mmspectral.converters.common import CheckpointError


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
    """Base class of the mmspectral backbones.

    Subclasses set ``arch_zoo``, ``essential_keys`` and ``optional_keys``
    (the keys of a dict arch), build their layers, and implement
    :meth:`stage_parts`.

    Args:
        frozen_stages (int): How much of the network to freeze: its parameters
            get ``requires_grad=False`` and its modules stay in eval mode.
            ``-1`` freezes nothing, ``0`` the stem (patch embedding and
            position embedding), ``k`` in ``1..4`` the stem and stages
            ``1..k``.
            Isotropic archs split their blocks into four consecutive stages of
            (nearly) equal depth. Output norms and pyramid layers are never
            frozen.
        norm_eval (bool): Keep every norm layer with running statistics
            (BatchNorm, SyncBN) in eval mode while training, so its statistics
            stay those of the pretrained model.
        init_cfg (dict, optional): Initialization config; use
            ``dict(type='Pretrained', checkpoint=PATH, prefix='backbone.')``
            to load the backbone of a classification checkpoint. A
            checkpoint made for another arch (shapes that differ, or weights
            this backbone has no place for) stops with an error naming the
            keys; weights only a downstream backbone has (output norms,
            pyramid layers) may be missing from it.
    """
    num_stages = 4
    arch_zoo: dict = {}
    essential_keys: tuple = ()
    optional_keys: tuple = ()
    # keys that a classification and a dense-prediction backbone of the same
    # arch need not share: output norms and pyramid layers
    adapter_keys = re.compile(r'^(norm\d*|pyramid)\.')

    @classmethod
    def check_arch(cls, arch: Union[str, dict]) -> dict:
        """The settings of ``arch``; raises ValueError for an unknown name
        or a dict arch with missing or unknown keys."""
        return resolve_arch(arch, cls.arch_zoo, cls.__name__,
                            cls.essential_keys, cls.optional_keys)

    def __init__(self, frozen_stages: int = -1, norm_eval: bool = False,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if not -1 <= frozen_stages <= self.num_stages:
            raise ValueError(f'frozen_stages must be in -1..{self.num_stages},'
                             f' got {frozen_stages}')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

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

    def init_weights(self):
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            self.load_pretrained(cfg['checkpoint'], cfg.get('prefix'))
            self._is_init = True
        else:
            super().init_weights()

    def load_pretrained(self, checkpoint: str, prefix: str = None):
        """Load ``checkpoint`` (the entries under ``prefix``, if given).

        Raises:
            FileNotFoundError: the checkpoint is not there.
            CheckpointError: it does not fit this arch (the message names the
                keys).
        """
        name = type(self).__name__
        if '://' not in checkpoint and not osp.isfile(checkpoint):
            raise FileNotFoundError(
                f'{name}: pretrained checkpoint {checkpoint!r} not found. '
                'Convert the official weights with tools/model_converters/'
                f'{name.lower()}2mmspectral.py, or set the backbone\'s '
                'init_cfg=None to train from scratch.')
        loaded = _load_checkpoint(checkpoint, map_location='cpu')
        state = loaded.get('state_dict', loaded)
        state = {k[7:] if k.startswith('module.') else k: v
                 for k, v in state.items()}
        if prefix:
            state = {k[len(prefix):]: v for k, v in state.items()
                     if k.startswith(prefix)}
            if not state:
                raise CheckpointError(f'{checkpoint}: no key starts with '
                                      f'the prefix {prefix!r}')
        try:
            result = self.load_state_dict(state, strict=False)
        except RuntimeError as err:
            raise CheckpointError(
                f'{checkpoint} does not fit this {name} arch '
                f'{self.arch_name!r}: {err}') from err
        unexpected = [k for k in result.unexpected_keys
                      if not self.adapter_keys.match(k)]
        if unexpected:
            raise CheckpointError(
                f'{checkpoint} does not fit this {name} arch '
                f'{self.arch_name!r}: it has {len(unexpected)} weights this '
                f'backbone has no place for: {unexpected[:8]}')
        logger = MMLogger.get_current_instance()
        logger.info(f'{name}: loaded {len(state)} tensors from {checkpoint}')
        if result.missing_keys:
            logger.info(f'{name}: not in the checkpoint (initialised as '
                        f'new): {result.missing_keys}')

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self
