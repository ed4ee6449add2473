"""Deployment: lowering the spectral layers for ONNX, exporting models and
running them with ONNX Runtime or OpenVINO.

Only :mod:`.lowering` is imported here (the layers ask it for the active
lowering); the export and runtime helpers live in :mod:`.export`,
:mod:`.wrappers` and :mod:`.runtime`, which need the optional
``requirements/deploy.txt``.
"""
from .lowering import (LOWERINGS, LoweringError, SpectralLowering,
                       active_lowering, get_lowering, spectral_lowering)

__all__ = [
    'LOWERINGS', 'LoweringError', 'SpectralLowering', 'active_lowering',
    'get_lowering', 'spectral_lowering'
]
