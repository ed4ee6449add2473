"""What ``valid_region`` costs and buys on a batch of two image sizes.

The tool is :mod:`mmspectral.cli.benchmark_padding`; ``--help`` shows its
usage.
"""
import sys

from mmspectral.cli.benchmark_padding import main

if __name__ == '__main__':
    sys.exit(main())
