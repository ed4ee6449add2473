"""Backbone latency, throughput and peak memory against the peers.

The tool is :mod:`mmspectral.cli.benchmark`; ``--help`` shows its usage.
"""
import sys

from mmspectral.cli.benchmark import main

if __name__ == '__main__':
    sys.exit(main())
