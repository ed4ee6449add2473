"""Convert an official AFNONet checkpoint to an mmspectral checkpoint.

    python tools/model_converters/afno2mmspectral.py afnonet.pth \
        checkpoints/afno-ti_in1k.pth
"""
import sys

from mmspectral.converters import (build_afno_backbone, convert_afno,
                                   run_converter)
from mmspectral.models import AFNO

if __name__ == '__main__':
    run_converter(sys.argv[1:], 'AFNO', 'NVlabs/AFNO-transformer',
                  convert_afno, build_afno_backbone, AFNO.arch_zoo)
