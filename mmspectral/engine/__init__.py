"""What mmengine calls the engine: the hooks and the optimizer wrapper
constructor mmspectral registers (``mmspectral.FiniteCheckHook``,
``mmspectral.LayerDecayOptimizerConstructor``, ...). The command-line
tools' own support lives in :mod:`mmspectral.cli`."""
from .hooks import (CuFFTPlanCacheHook, DataCheckHook, DataError,
                    ExactResumeHook, FiniteCheckHook, NonFinitePredictions,
                    TrainingDiverged)
from .optimizers import LayerDecayOptimizerConstructor

__all__ = [
    'CuFFTPlanCacheHook', 'DataCheckHook', 'DataError', 'ExactResumeHook',
    'FiniteCheckHook', 'NonFinitePredictions', 'TrainingDiverged',
    'LayerDecayOptimizerConstructor'
]
