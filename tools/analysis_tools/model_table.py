"""Parameters and FLOPs of every arch beside the published ones.

The tool is :mod:`mmspectral.cli.model_table`; ``--help`` shows its usage.
"""
import sys

from mmspectral.cli.model_table import main

if __name__ == '__main__':
    sys.exit(main())
