"""Deployment: lowering the spectral layers for ONNX, exporting models and
running them with ONNX Runtime or OpenVINO (see ``docs/deployment.md``).

Only :mod:`.lowering` is imported here (it puts an implementation into the
spectral layers of a model; the layers know nothing of this package). The
rest needs the optional ``requirements/deploy.txt`` and is imported
explicitly:

* :mod:`.transforms`: the 2-D real FFT pair as the ONNX DFT operator;
* :mod:`.onnx_ops`: PyTorch operators exported as one ONNX operator each
  (DFT, NonMaxSuppression, RoiAlign);
* :mod:`.detection`, :mod:`.wrappers`: the exported graphs of backbones,
  classifiers, segmentors and detectors (post-processing included);
* :mod:`.export`, :mod:`.build`: exporting a module, or a config's model;
* :mod:`.runtime`: running an export, pre- and post-processing images;
* :mod:`.parity`: comparing an export with the PyTorch model.
"""
from .lowering import (LOWERINGS, LoweringError, SpectralLowering,
                       get_lowering, spectral_lowering)

__all__ = [
    'LOWERINGS', 'LoweringError', 'SpectralLowering', 'get_lowering',
    'spectral_lowering'
]
