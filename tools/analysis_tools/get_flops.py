"""FLOPs and parameters of a config's model, FFTs included.

The tool is :mod:`mmspectral.cli.get_flops`; ``--help`` shows its usage.
"""
import sys

from mmspectral.cli.get_flops import main

if __name__ == '__main__':
    sys.exit(main())
