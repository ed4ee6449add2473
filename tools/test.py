"""Evaluate a checkpoint with an mmdet, mmseg or mmpretrain config.

The tool is :mod:`mmspectral.cli.test`; ``--help`` shows its usage.
"""
from mmspectral.cli.test import main

if __name__ == '__main__':
    main()
