"""Plot the learned global filters: spectra and spatial kernels.

The tool is :mod:`mmspectral.cli.visualize_filters`; ``--help`` shows its
usage.
"""
import sys

from mmspectral.cli.visualize_filters import main

if __name__ == '__main__':
    sys.exit(main())
