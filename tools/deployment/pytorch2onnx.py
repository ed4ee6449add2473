"""Export a config's model (or its backbone) to ONNX.

The tool is :mod:`mmspectral.cli.pytorch2onnx`; ``--help`` shows its usage.
"""
import sys

from mmspectral.cli.pytorch2onnx import main

if __name__ == '__main__':
    sys.exit(main())
