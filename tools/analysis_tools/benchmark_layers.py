"""Time the spectral layers on the feature maps dense heads produce.

The tool is :mod:`mmspectral.cli.benchmark_layers`; ``--help`` shows its usage.
"""
import sys

from mmspectral.cli.benchmark_layers import main

if __name__ == '__main__':
    sys.exit(main())
