"""Run an exported model on images and draw its predictions.

The tool is :mod:`mmspectral.cli.onnx_inference`; ``--help`` shows its usage.
"""
import sys

from mmspectral.cli.onnx_inference import main

if __name__ == '__main__':
    sys.exit(main())
