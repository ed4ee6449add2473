"""What needs a GPU to be checked, in one command (mixed precision, cuFFT
plans, memory over many sizes, speed, an AMP step, the spectral engine).

The tool is :mod:`mmspectral.cli.gpu_check`; ``--help`` shows its usage.
"""
import sys

from mmspectral.cli.gpu_check import main

if __name__ == '__main__':
    sys.exit(main())
