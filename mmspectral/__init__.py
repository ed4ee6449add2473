"""mmspectral: Fourier-domain backbones for the OpenMMLab stack.

Importing the package registers every model in the ``mmspectral`` registry
and calls :func:`mmspectral.compat.route_checkpoint_loading`, which makes
mmengine read every checkpoint (local files and every URL scheme) through
:func:`mmspectral.checkpoint.read_checkpoint`, where nothing can run code.
"""
from . import engine, models  # noqa: F401
from .compat import route_checkpoint_loading
from .version import __version__

route_checkpoint_loading()

__all__ = ['__version__', 'route_checkpoint_loading']
