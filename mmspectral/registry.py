"""mmspectral's registries: children of mmengine's root registries.

mmengine resolves ``type='mmspectral.GFNet'`` in any scope (mmdet, mmseg,
mmpretrain) by looking up the child registry with scope ``mmspectral``. For the
plain ``type='GFNet'`` a lookup walks from the scope's registry up to the root
only, never into siblings, so every model is also registered in the root
registry; a name that the scope's own library already has (mmpretrain's
``HorNet``) resolves to that library's class, hence the scoped form is the
one the configs use.
"""
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import Registry

__all__ = ['MODELS', 'MODEL_WRAPPERS', 'HOOKS', 'OPTIM_WRAPPER_CONSTRUCTORS']


class _RootVisibleRegistry(Registry):
    """A child registry whose registrations are also made in its parent."""

    def _register_module(self, module, module_name=None, force=False):
        super()._register_module(module, module_name, force)
        self.parent._register_module(module, module_name, force)


MODELS = _RootVisibleRegistry(
    'model',
    parent=MMENGINE_MODELS,
    scope='mmspectral',
    locations=['mmspectral.models'])

MODEL_WRAPPERS = Registry(
    'model_wrapper',
    parent=MMENGINE_MODEL_WRAPPERS,
    scope='mmspectral',
    locations=['mmspectral.engine'])

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
