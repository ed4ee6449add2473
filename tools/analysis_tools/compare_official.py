"""GFNet-H against the official implementation: same weights, same input.

The tool is :mod:`mmspectral.cli.compare_official`; ``--help`` shows its usage.
"""
import sys

from mmspectral.cli.compare_official import main

if __name__ == '__main__':
    sys.exit(main())
