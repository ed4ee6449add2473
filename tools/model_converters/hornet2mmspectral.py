"""Convert an official HorNet checkpoint, or an mmpretrain one, to an
mmspectral checkpoint (the source is recognised from the keys).

    python tools/model_converters/hornet2mmspectral.py hornet_tiny_gf.pth \
        checkpoints/hornet-t-gf_in1k.pth
"""
import sys

from mmspectral.converters import (build_hornet_backbone, convert_hornet,
                                   run_converter)
from mmspectral.models import HorNet

if __name__ == '__main__':
    run_converter(sys.argv[1:], 'HorNet',
                  'raoyongming/HorNet, or mmpretrain', convert_hornet,
                  build_hornet_backbone, HorNet.arch_zoo)
