from .afno import AFNO
from .afno_mit import AFNOMiT
from .base import IsotropicBackbone, SpectralBackbone
from .gfnet import GFNet, GFNetH
from .hornet import HorNet
from .spectformer import SpectFormer, SpectFormerH

__all__ = [
    'SpectralBackbone', 'IsotropicBackbone', 'AFNO', 'AFNOMiT', 'GFNet',
    'GFNetH', 'HorNet', 'SpectFormer', 'SpectFormerH'
]
