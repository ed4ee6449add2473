"""Data problems reported with the file they come from.

* :func:`name_failing_samples` wraps the pipeline of every dataset of a
  config in :class:`NameSampleOnFailure`, a registered transform, so that a
  sample that fails to load (an undecodable, empty or missing image, a
  label map of another size than its image) names its files.
* :func:`empty_dataset_error` is the error the tools' Runner raises for a
  dataset without samples (see :mod:`mmspectral.cli.runner`).

Label ids are checked batch by batch by
:class:`mmspectral.engine.DataCheckHook`.
"""
import os.path as osp
from typing import Iterable

from mmengine.dataset import Compose

from mmspectral.engine import DataError
from mmspectral.registry import TRANSFORMS
from .checks import ConfigError, leaf_dataset_cfgs

__all__ = [
    'NameSampleOnFailure', 'name_failing_samples', 'leaf_datasets',
    'empty_dataset_error'
]


@TRANSFORMS.register_module()
class NameSampleOnFailure:
    """Run ``transforms`` (a dataset's pipeline) so that a failing step
    raises :class:`DataError` naming the step and the sample's files,
    instead of the library's bare error; a label map whose size differs
    from its image's is refused as it is loaded.

    The inner steps are built in the current default scope, the one the
    dataset is built in (mmdet's ``LoadAnnotations`` in an mmdet config).

    Args:
        transforms (list[dict | callable]): The pipeline.
    """

    def __init__(self, transforms: list):
        self.pipeline = Compose(transforms)

    def __call__(self, results: dict):
        for step in self.pipeline.transforms:
            had_label = 'gt_seg_map' in results
            try:
                results = step(results)
            except DataError:
                raise
            except Exception as err:
                raise DataError(self._message(step, results, err)) from err
            if results is None:  # the step dropped the sample
                return None
            if not had_label and 'gt_seg_map' in results:
                self._check_label_size(results)
        return results

    @staticmethod
    def _files(results: dict) -> list:
        return [results[k] for k in ('img_path', 'seg_map_path')
                if isinstance(results.get(k), str)]

    def _message(self, step, results: dict, err: Exception) -> str:
        files = self._files(results)
        empty = [f for f in files if osp.isfile(f) and osp.getsize(f) == 0]
        missing = [f for f in files if not osp.exists(f)]
        name = type(step).__name__
        if empty:
            return f'{name}: {empty[0]} is empty (0 bytes)'
        if missing:
            return f'{name}: {missing[0]} does not exist'
        reason = (str(err).strip() or type(err).__name__).splitlines()[-1]
        return (f'{name} failed on {" / ".join(files) or "a sample"}: '
                f'{reason}')

    @staticmethod
    def _check_label_size(results: dict):
        """A label map is loaded at its file's size, the image's size is
        ``ori_shape``: they must agree (mmseg would fail with an
        IndexError, or evaluate against the wrong pixels)."""
        label = results['gt_seg_map'].shape[:2]
        image = tuple(results.get('ori_shape') or ())[:2]
        if image and tuple(label) != image:
            raise DataError(
                f'the label map {results.get("seg_map_path", "?")} is '
                f'{label[0]}x{label[1]}, its image '
                f'{results.get("img_path", "?")} {image[0]}x{image[1]}: a '
                'label map must have the size of its image')

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.pipeline!r})'


def name_failing_samples(cfg, phases: Iterable[str]):
    """Wrap the pipeline of each dataset of the ``{phase}_dataloader``s in
    :class:`NameSampleOnFailure` (once)."""
    for phase in phases:
        loader = cfg.get(f'{phase}_dataloader') or {}
        for dataset in leaf_dataset_cfgs(loader.get('dataset')):
            pipeline = dataset.get('pipeline')
            if not isinstance(pipeline, list) or any(
                    _is_wrapper(step) for step in pipeline):
                continue
            dataset['pipeline'] = [
                dict(type='mmspectral.NameSampleOnFailure',
                     transforms=pipeline)
            ]


def _is_wrapper(step) -> bool:
    kind = step.get('type') if isinstance(step, dict) else step
    return isinstance(step, NameSampleOnFailure) or (
        isinstance(kind, str) and kind.endswith('NameSampleOnFailure'))


def leaf_datasets(dataset):
    """Built datasets inside wrappers (ConcatDataset, RepeatDataset...)."""
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
