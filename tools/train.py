"""Train a model from an mmdet, mmseg or mmpretrain config.

The tool is :mod:`mmspectral.cli.train`; ``--help`` shows its usage.
"""
from mmspectral.cli.train import main

if __name__ == '__main__':
    main()
