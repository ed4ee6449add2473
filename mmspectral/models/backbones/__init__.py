from .afno import AFNO
from .afno_mit import AFNOMiT
from .gfnet import GFNet
from .hornet import HorNet
from .spectformer import SpectFormer

__all__ = ['AFNO', 'AFNOMiT', 'GFNet', 'HorNet', 'SpectFormer']
