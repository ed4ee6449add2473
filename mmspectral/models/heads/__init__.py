# Not imported by ``mmspectral``: see token_label_head.py.
from .token_label_head import SpectFormerTokenLabelHead

__all__ = ['SpectFormerTokenLabelHead']
