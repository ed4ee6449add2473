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

MODELS = Registry(
    'model',
    parent=MMENGINE_MODELS,
    scope='mmspectral',
    locations=['mmspectral.models'])

# the CPU (gloo) DDP wrapper and the sample-naming transform belong to the
# command-line tools (mmspectral.cli), which ``import mmspectral`` does not
# load; a config naming them imports them from these locations
MODEL_WRAPPERS = Registry(
    'model_wrapper',
    parent=MMENGINE_MODEL_WRAPPERS,
    scope='mmspectral',
    locations=['mmspectral.cli.distributed'])

TRANSFORMS = Registry(
    'transform',
    parent=MMENGINE_TRANSFORMS,
    scope='mmspectral',
    locations=['mmspectral.cli.data_checks'])

HOOKS = Registry(
    'hook',
    parent=MMENGINE_HOOKS,
    scope='mmspectral',
    locations=['mmspectral.engine'])

OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    scope='mmspectral',
    locations=['mmspectral.engine'])
