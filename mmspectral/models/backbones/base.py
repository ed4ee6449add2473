"""What every mmspectral backbone shares: arch lookup and the dense-prediction
arguments (``out_indices``, ``frozen_stages``, ``norm_eval``), with one
meaning across families."""
from typing import Iterable, List, Sequence, Union

import torch.nn as nn
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm


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
            f'{family} dict arch: missing keys {sorted(missing)}, unknown keys '
            f'{sorted(unknown)}; essential keys are {sorted(essential_keys)}, '
            f'optional keys {sorted(optional_keys)}')
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

    Subclasses build their layers and implement :meth:`stage_parts`.

    Args:
        frozen_stages (int): How much of the network to freeze: its parameters
            get ``requires_grad=False`` and its modules stay in eval mode.
            ``-1`` freezes nothing, ``0`` the stem (patch embedding and
            position embedding), ``k`` in ``1..4`` the stem and stages ``1..k``.
            Isotropic archs split their blocks into four consecutive stages of
            (nearly) equal depth. Output norms and pyramid layers are never
            frozen.
        norm_eval (bool): Keep every norm layer with running statistics
            (BatchNorm, SyncBN) in eval mode while training, so its statistics
            stay those of the pretrained model.
        init_cfg (dict, optional): Initialization config; use
            ``dict(type='Pretrained', checkpoint=PATH, prefix='backbone.')``
            to load the backbone of a classification checkpoint.
    """
    num_stages = 4

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

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self
