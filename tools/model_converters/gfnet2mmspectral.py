"""Convert an official GFNet checkpoint to an mmspectral checkpoint.

    python tools/model_converters/gfnet2mmspectral.py gfnet-h-ti.pth \
        checkpoints/gfnet-h-ti_in1k.pth
"""
import sys

from mmspectral.converters import (build_gfnet_backbone, convert_gfnet,
                                   run_converter)
from mmspectral.models import GFNet, GFNetH

if __name__ == '__main__':
    run_converter(sys.argv[1:], 'GFNet', 'raoyongming/GFNet', convert_gfnet,
                  build_gfnet_backbone, {
                      **GFNet.arch_zoo,
                      **GFNetH.arch_zoo
                  })
