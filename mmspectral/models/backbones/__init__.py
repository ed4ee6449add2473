from .gfnet import GFNet

__all__ = ['GFNet']
