"""Convert an official SpectFormer checkpoint (vanilla or hierarchical) to
an mmspectral checkpoint.

    python tools/model_converters/spectformer2mmspectral.py spectformer_s.pth \
        checkpoints/spectformer-h-s_in1k.pth
"""
import sys

from mmspectral.converters import (build_spectformer_backbone,
                                   convert_spectformer, run_converter)
from mmspectral.models import SpectFormer, SpectFormerH

if __name__ == '__main__':
    run_converter(sys.argv[1:], 'SpectFormer', 'badripatro/SpectFormers',
                  convert_spectformer, build_spectformer_backbone,
                  {**SpectFormer.arch_zoo, **SpectFormerH.arch_zoo})
