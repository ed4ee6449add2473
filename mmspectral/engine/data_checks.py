"""Data problems reported with the file they come from.

The tools' Runner (:mod:`mmspectral.engine.runner`) passes every data loader
it builds through :func:`guard_data_loader`: an empty dataset stops the run
before its sampler could wait forever, and each pipeline step is wrapped so
that a sample that fails to load names its files. :class:`DataCheckHook`
checks the segmentation labels of every batch.
"""
import logging
import os.path as osp
from collections import Counter

from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmspectral.registry import HOOKS
from .checks import ConfigError, leaf_dataset_cfgs

__all__ = [
    'DataError', 'NameSampleOnFailure', 'leaf_datasets', 'guard_data_loader',
    'empty_dataset_error', 'DataCheckHook'
]


class DataError(RuntimeError):
    """A sample that cannot be loaded or holds invalid labels."""


class NameSampleOnFailure:
    """A pipeline transform that, if it fails, raises :class:`DataError`
    naming the sample's files (an undecodable, empty or missing image or
    label map) instead of the library's bare error."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, results: dict):
        try:
            return self.transform(results)
        except DataError:
            raise
        except Exception as err:
            raise DataError(self._message(results, err)) from err

    def _message(self, results: dict, err: Exception) -> str:
        files = [results[k] for k in ('img_path', 'seg_map_path')
                 if isinstance(results.get(k), str)]
        empty = [f for f in files if osp.isfile(f) and osp.getsize(f) == 0]
        missing = [f for f in files if not osp.exists(f)]
        name = type(self.transform).__name__
        if empty:
            return f'{name}: {empty[0]} is empty (0 bytes)'
        if missing:
            return f'{name}: {missing[0]} does not exist'
        reason = (str(err).strip() or type(err).__name__).splitlines()[-1]
        return (f'{name} failed on {" / ".join(files) or "a sample"}: '
                f'{reason}')

    def __repr__(self) -> str:
        return repr(self.transform)


def leaf_datasets(dataset):
    inner = getattr(dataset, 'datasets', None) or (
        [dataset.dataset] if hasattr(dataset, 'dataset') else [])
    if inner:
        for child in inner:
            yield from leaf_datasets(child)
    else:
        yield dataset


def _describe_dataset(dataset) -> str:
    sources = [
        str(getattr(leaf, 'ann_file', '') or getattr(leaf, 'data_root', ''))
        for leaf in leaf_datasets(dataset)
    ]
    return f'{type(dataset).__name__}, {", ".join(sources)}'


def empty_dataset_error(dataset_cfg) -> ConfigError:
    """The error for a dataset (or its config) without samples."""
    if isinstance(dataset_cfg, dict):
        leaves = list(leaf_dataset_cfgs(dataset_cfg))
        name = f'{dataset_cfg.get("type", "?")}, ' + ', '.join(
            osp.join(leaf.get('data_root') or '', leaf.get('ann_file') or '')
            for leaf in leaves)
        filters = next((leaf['filter_cfg'] for leaf in leaves
                        if leaf.get('filter_cfg')), None)
    else:
        name = _describe_dataset(dataset_cfg)
        filters = getattr(dataset_cfg, 'filter_cfg', None)
    return ConfigError(
        f'the dataset ({name}) has no samples: its annotations list none, or '
        'every one was filtered out' +
        (f' (filter_cfg={filters})' if filters else ''))


def guard_data_loader(loader):
    """Refuse an empty dataset and make each pipeline step of the loader's
    datasets name the sample it fails on; returns ``loader``."""
    if len(loader.dataset) == 0:
        raise empty_dataset_error(loader.dataset)
    for leaf in leaf_datasets(loader.dataset):
        pipeline = getattr(leaf, 'pipeline', None)
        transforms = getattr(pipeline, 'transforms', None)
        if isinstance(transforms, list):
            pipeline.transforms = [
                t if isinstance(t, NameSampleOnFailure) else
                NameSampleOnFailure(t) for t in transforms
            ]
    return loader


@HOOKS.register_module()
class DataCheckHook(Hook):
    """Segmentation label ids outside ``0 .. num_classes - 1`` that are not
    ``ignore_index`` (e.g. Cityscapes ``*_labelIds.png`` instead of
    ``*_labelTrainIds.png``): an error naming the file in training, where
    the loss would fail on them; in validation and testing, where mIoU
    silently drops such pixels, a warning per file with the pixel count, and
    a summary after the evaluation. (Empty datasets and samples that fail to
    load are reported as the tools' Runner builds the data loaders, see
    :mod:`mmspectral.engine.runner`.)
    """
    priority = 'VERY_HIGH'

    def __init__(self):
        self._out_of_range = Counter()

    def before_val(self, runner) -> None:
        self._out_of_range.clear()

    def before_test(self, runner) -> None:
        self._out_of_range.clear()

    # -- segmentation labels -------------------------------------------------

    @staticmethod
    def _label_space(loader):
        dataset = loader.dataset
        classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
        ignore = getattr(next(leaf_datasets(dataset)), 'ignore_index', 255)
        return (len(classes) if classes else None), ignore

    def _bad_labels(self, loader, data_batch):
        """``(file, pixel count, ids)`` of each sample with out-of-range
        label ids."""
        samples = (data_batch or {}).get('data_samples') or []
        if not samples or 'gt_sem_seg' not in samples[0]:
            return []
        num_classes, ignore = self._label_space(loader)
        if num_classes is None:
            return []
        found = []
        for sample in samples:
            label = sample.gt_sem_seg.data
            bad = (label >= num_classes) & (label != ignore) | (label < 0)
            count = int(bad.sum())
            if count:
                ids = sorted(int(v) for v in label[bad].unique()[:8])
                found.append((sample.metainfo.get('seg_map_path', '?'),
                              count, ids, num_classes, ignore))
        return found

    @staticmethod
    def _describe(path, count, ids, num_classes, ignore) -> str:
        return (f'{path}: {count} pixels with label ids {ids} outside 0..'
                f'{num_classes - 1} (ignore_index {ignore})')

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        bad = self._bad_labels(runner.train_loop.dataloader, data_batch)
        if bad:
            raise DataError(
                self._describe(*bad[0]) + '; the loss cannot use them. Are '
                'these the training-id label maps (Cityscapes: '
                '*_labelTrainIds.png, made by mmseg\'s '
                'tools/dataset_converters/cityscapes.py)?')

    def _count(self, loader, data_batch):
        for path, count, ids, num_classes, ignore in self._bad_labels(
                loader, data_batch):
            if path not in self._out_of_range:
                print_log(
                    self._describe(path, count, ids, num_classes, ignore) +
                    '; the metric ignores these pixels',
                    logger='current', level=logging.WARNING)
            self._out_of_range[path] += count

    def before_val_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._count(runner.val_loop.dataloader, data_batch)

    def before_test_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._count(runner.test_loop.dataloader, data_batch)

    def _summary(self):
        if self._out_of_range:
            print_log(
                f'{sum(self._out_of_range.values())} label pixels in '
                f'{len(self._out_of_range)} files had ids outside the '
                'classes and were left out of the metric (see the warnings '
                'above)',
                logger='current', level=logging.WARNING)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._summary()

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._summary()
