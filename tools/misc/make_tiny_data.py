"""Generate the tiny COCO and Cityscapes datasets.

    python tools/misc/make_tiny_data.py [--root data/tiny] [--seed 0] [--force]

They go to ``ROOT/coco`` and ``ROOT/cityscapes`` (see
:func:`mmspectral.testing.make_tiny_datasets`). A dataset that is already
complete (same generator version and arguments) is skipped unless
``--force`` is given.
"""
import argparse

from mmspectral.testing import make_tiny_datasets


def parse_args(argv=None):
    """Parse the command line.

    Args:
        argv (list[str], optional): Arguments; ``sys.argv[1:]`` if None.

    Returns:
        argparse.Namespace: ``root``, ``seed`` and ``force``.
    """
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--root',
        default='data/tiny',
        help='parent folder of coco/ and cityscapes/')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--force',
        action='store_true',
        help='regenerate datasets that are complete')
    return parser.parse_args(argv)


def main(argv=None):
    """Generate the datasets and print where they went.

    Args:
        argv (list[str], optional): Arguments; ``sys.argv[1:]`` if None.

    Returns:
        dict: What :func:`make_tiny_datasets` returned.
    """
    args = parse_args(argv)
    summary = make_tiny_datasets(args.root, seed=args.seed, force=args.force)
    for name, info in summary.items():
        state = 'already complete' if info['skipped'] else 'generated'
        counts = ', '.join(f'{num} {split}'
                           for split, num in info['images'].items())
        print(f'{name}: {info["root"]} ({counts} images, {state})')
    return summary


if __name__ == '__main__':
    main()
