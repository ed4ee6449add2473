"""mmspectral: Fourier-domain backbones for the OpenMMLab stack.

Importing the package registers every model in the ``mmspectral`` registry
(and makes the stack's known incompatibilities harmless, see
:mod:`mmspectral.compat`).
"""
from . import compat  # noqa: F401  (must run before mmengine loads files)
from . import engine, models  # noqa: F401
from .version import __version__

__all__ = ['__version__']
