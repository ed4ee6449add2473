from .afno import AFNO
from .afno_mit import AFNOMiT
from .gfnet import GFNet

__all__ = ['AFNO', 'AFNOMiT', 'GFNet']
