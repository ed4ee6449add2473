"""mmspectral's registries: children of mmengine's root registries.

mmengine resolves ``type='mmspectral.GFNet'`` in a config of any scope
(mmdet, mmseg, mmpretrain) by looking up the child registry with scope
``mmspectral``. That scoped name is the one to use: nothing is registered in
mmengine's root, so a plain name means what the config's own library says
it means (mmpretrain's ``HorNet`` stays mmpretrain's), and the tools'
pre-run check answers a plain ``type='GFNet'`` in an mmdet config with the
scoped name to use.
"""
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import Registry
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS

__all__ = [
    'MODELS', 'MODEL_WRAPPERS', 'HOOKS', 'OPTIM_WRAPPER_CONSTRUCTORS',
    'TRANSFORMS'
]


def _child(name: str, parent: Registry, location: str) -> Registry:
    """mmspectral's registry under mmengine's ``parent``, whose entries a
    config naming them imports from ``location``."""
    return Registry(
        name, parent=parent, scope='mmspectral', locations=[location])


MODELS = _child('model', MMENGINE_MODELS, 'mmspectral.models')

# the CPU (gloo) DDP wrapper and the sample-naming transform belong to the
# command-line tools (mmspectral.cli), which ``import mmspectral`` does not
# load; a config naming them imports them from these locations
MODEL_WRAPPERS = _child('model_wrapper', MMENGINE_MODEL_WRAPPERS,
                        'mmspectral.cli.distributed')
TRANSFORMS = _child('transform', MMENGINE_TRANSFORMS,
                    'mmspectral.cli.data_checks')
HOOKS = _child('hook', MMENGINE_HOOKS, 'mmspectral.engine')
OPTIM_WRAPPER_CONSTRUCTORS = _child('optimizer wrapper constructor',
                                    MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
                                    'mmspectral.engine')
