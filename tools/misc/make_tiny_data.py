"""Generate the tiny COCO and Cityscapes datasets.

    python tools/misc/make_tiny_data.py [--root data/tiny] [--seed 0]
        [--num-coco TRAIN VAL] [--num-cityscapes TRAIN VAL] [--quiet]
        [--force]

They go to ``ROOT/coco`` and ``ROOT/cityscapes`` (see ``tiny_data.py``
beside this script, which ``make demo`` uses too). A dataset that is
already complete (same generator version and arguments) is skipped unless
``--force`` is given.
"""
import argparse

from tiny_data import make_tiny_datasets


def parse_args(argv=None):
    """Parse the command line.

    Args:
        argv (list[str], optional): Arguments; ``sys.argv[1:]`` if None.

    Returns:
        argparse.Namespace: The options.
    """
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--root',
        default='data/tiny',
        help='parent folder of coco/ and cityscapes/')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--num-coco', type=int, nargs=2, default=(48, 16),
        metavar=('TRAIN', 'VAL'), help='COCO images. Defaults to 48 16')
    parser.add_argument(
        '--num-cityscapes', type=int, nargs=2, default=(32, 8),
        metavar=('TRAIN', 'VAL'),
        help='Cityscapes images. Defaults to 32 8')
    parser.add_argument(
        '--quiet', action='store_true', help='no progress bars')
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
    summary = make_tiny_datasets(
        args.root, seed=args.seed, progress=not args.quiet,
        force=args.force, num_coco=tuple(args.num_coco),
        num_cityscapes=tuple(args.num_cityscapes))
    for name, info in summary.items():
        state = 'already complete' if info['skipped'] else 'generated'
        counts = ', '.join(f'{num} {split}'
                           for split, num in info['images'].items())
        print(f'{name}: {info["root"]} ({counts} images, {state})')
    return summary


if __name__ == '__main__':
    main()
