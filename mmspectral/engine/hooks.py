"""Hooks that tools/train.py and tools/test.py add to every run (any
config may name them too)."""
import logging
import math
import os.path as osp
import random
from collections import Counter

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop
from mmengine.structures import BaseDataElement

from mmspectral.checkpoint import is_remote, listing, non_finite_keys
from mmspectral.registry import HOOKS

__all__ = [
    'ExactResumeHook', 'CuFFTPlanCacheHook', 'FiniteCheckHook',
    'DataCheckHook', 'TrainingDiverged', 'NonFinitePredictions', 'DataError'
]


class TrainingDiverged(RuntimeError):
    """The loss or the weights became NaN or infinite."""


class NonFinitePredictions(RuntimeError):
    """A model that predicts NaN or infinity (e.g. finite but huge
    weights that overflow float32)."""


class DataError(RuntimeError):
    """A sample that cannot be loaded or holds invalid labels."""


@HOOKS.register_module()
class ExactResumeHook(Hook):
    """Resume a run exactly where it was: the random number generators too.

    Checkpoints get the state of torch's (and CUDA's), numpy's and Python's
    generators; ``--resume`` restores it just before training goes on, so
    dropout, drop path and random sampling continue as in an uninterrupted
    run. An iteration-based loop replays the skipped batches through the
    data pipeline, which advances the data-augmentation generators (numpy,
    Python) by itself, so only torch's state is restored there.
    """
    priority = 'VERY_LOW'

    def __init__(self):
        self._state = None

    @staticmethod
    def check_state(state) -> None:
        """Raise ValueError, naming the part, unless ``state`` (a
        checkpoint's ``rng_state``) restores every generator: each part is
        set on a throwaway generator of its kind."""
        if not isinstance(state, dict) or 'torch' not in state:
            raise ValueError('rng_state is not a dict with a torch state')
        parts = dict(
            torch=lambda s: torch.Generator().set_state(s),
            numpy=lambda s: np.random.RandomState().set_state(s),
            random=lambda s: random.Random().setstate(s))
        for name, restore in parts.items():
            if name not in state:
                continue
            try:
                restore(state[name])
            except Exception as err:
                raise ValueError(f'rng_state[{name!r}] cannot be restored '
                                 f'({type(err).__name__}: {err})') from None
        cuda = state.get('cuda', [])
        if not isinstance(cuda, (list, tuple)) or not all(
                isinstance(s, torch.Tensor) and s.dtype == torch.uint8
                for s in cuda):
            raise ValueError("rng_state['cuda'] is not a list of byte "
                             'tensors')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = dict(
            torch=torch.get_rng_state(),
            numpy=np.random.get_state(),
            random=random.getstate())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint['rng_state'] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # a plain load_from (fine-tuning) keeps the fresh generators
        if getattr(runner, '_resume', False):
            self._state = checkpoint.get('rng_state')

    def before_train(self, runner) -> None:
        state, self._state = self._state, None
        if state is None:
            return
        torch.set_rng_state(state['torch'])
        if 'cuda' in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state['cuda'])
        if not isinstance(runner.train_loop, IterBasedTrainLoop):
            np.random.set_state(state['numpy'])
            random.setstate(state['random'])


@HOOKS.register_module()
class CuFFTPlanCacheHook(Hook):
    """Bound the number of cuFFT plans PyTorch keeps on the run's GPU.

    PyTorch caches one cuFFT plan per transform shape and device, 4096 by
    default, and a plan can hold GPU memory of its own. Every global-filter
    layer needs plans for each feature-map size it sees (its forward and
    inverse transforms, and those of the backward pass), so multi-scale
    training and detection tests, whose batches come in many padded sizes,
    keep adding plans for sizes that may not return. The bound keeps the
    most recently used plans; an evicted one is made again when its size
    returns. Nothing happens without CUDA.

    Args:
        max_size (int): Plans kept per device. Defaults to 256.
    """
    priority = 'VERY_HIGH'

    def __init__(self, max_size: int = 256):
        if isinstance(max_size, bool) or not isinstance(max_size, int) or \
                max_size < 0:
            raise ValueError('CuFFTPlanCacheHook: max_size must be an int '
                             f'>= 0, got {max_size!r}')
        self.max_size = max_size

    def before_run(self, runner) -> None:
        if not torch.cuda.is_available():
            return
        device = torch.cuda.current_device()
        torch.backends.cuda.cufft_plan_cache[device].max_size = self.max_size
        runner.logger.info(f'cuFFT plan cache of cuda:{device} bounded at '
                           f'{self.max_size} plans')


def _value(value) -> float:
    if isinstance(value, torch.Tensor):
        return value.detach().float().mean().item()
    return float(value)


@HOOKS.register_module()
class FiniteCheckHook(Hook):
    """Stop at the first NaN or infinite loss, weight or prediction.

    Training: after each iteration every logged ``loss*`` value must be
    finite, and before a checkpoint is saved every weight must be;
    otherwise training stops with :class:`TrainingDiverged` naming the
    iteration and the last checkpoint actually written, which stays the
    last good one. (Mixed precision with dynamic loss scaling skips
    overflowing steps by itself and does not trip this: its loss stays
    finite.)

    Validation and testing: every floating-point prediction of every
    sample (``pred_*`` fields and logits) must be finite; otherwise the
    run stops with :class:`NonFinitePredictions` naming the image and the
    checkpoint, instead of reporting metrics of NaN outputs (finite but
    huge weights overflow float32 in the forward pass).
    """
    # before CheckpointHook (VERY_LOW) in after_train_iter
    priority = 'ABOVE_NORMAL'

    def __init__(self):
        self._written = None

    def before_train(self, runner) -> None:
        # a resumed run's message hub names the checkpoint it resumed from
        self._written = runner.message_hub.get_info('last_ckpt')

    def _last_checkpoint(self) -> str:
        last = self._written
        if last and (is_remote(last) or osp.isfile(last)):
            return f'the last checkpoint written is {last}'
        return 'no checkpoint was written'

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        bad = {
            key: _value(value)
            for key, value in (outputs or {}).items()
            if 'loss' in key and not math.isfinite(_value(value))
        }
        if bad:
            losses = ', '.join(f'{k}={v}' for k, v in bad.items())
            raise TrainingDiverged(
                f'training diverged at iteration {runner.iter + 1} (epoch '
                f'{runner.epoch + 1}): {losses}. Stopped; '
                f'{self._last_checkpoint()}. Lower the learning rate, '
                'warm it up for longer, or clip gradients '
                '(optim_wrapper.clip_grad)')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        # CheckpointHook names the file in the message hub before writing
        saving = runner.message_hub.get_info('last_ckpt')
        bad = non_finite_keys(checkpoint.get('state_dict', {}))
        if bad:
            raise TrainingDiverged(
                f'the weights became NaN or infinite by iteration '
                f'{runner.iter + 1}: not saving them; '
                f'{self._last_checkpoint()}.\n' +
                listing('non-finite tensors', bad))
        self._written = saving

    def _check_predictions(self, runner, outputs) -> None:
        for sample in outputs or ():
            bad = sorted(_non_finite_fields(sample))
            if not bad:
                continue
            image = sample.metainfo.get('img_path') if isinstance(
                sample, BaseDataElement) else None
            weights = runner.cfg.get('load_from') or 'the trained weights'
            raise NonFinitePredictions(
                f'the model predicts NaN or infinite values ({", ".join(bad)}'
                f'{f" for {image}" if image else ""}) with the weights of '
                f'{weights}: they are finite but overflow float32 in the '
                'forward pass (weights near 1e38?), or the model diverged. '
                'No metrics are reported for such predictions')

    def after_val_iter(self, runner, batch_idx, data_batch=None,
                       outputs=None) -> None:
        self._check_predictions(runner, outputs)

    def after_test_iter(self, runner, batch_idx, data_batch=None,
                        outputs=None) -> None:
        self._check_predictions(runner, outputs)


def _non_finite_fields(node, name: str = ''):
    """Names of the prediction fields (``pred_*``, ``*logits``) of a data
    sample that hold NaN or infinity; ground truth is not looked at."""
    if isinstance(node, torch.Tensor):
        if (node.is_floating_point() or node.is_complex()) and \
                not bool(torch.isfinite(node).all()):
            yield name
    elif isinstance(node, BaseDataElement):
        for key, value in node.items():
            if name or key.startswith('pred') or key.endswith('logits'):
                yield from _non_finite_fields(value,
                                              f'{name}.{key}' if name else key)
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _non_finite_fields(value, f'{name}.{key}')


@HOOKS.register_module()
class DataCheckHook(Hook):
    """Segmentation label ids outside ``0 .. num_classes - 1`` that are not
    ``ignore_index`` (e.g. Cityscapes ``*_labelIds.png`` instead of
    ``*_labelTrainIds.png``): an error naming the file in training, where
    the loss would fail on them; in validation and testing, where mIoU
    silently drops such pixels, a warning per file with the pixel count, and
    a summary after the evaluation. (Empty datasets and samples that fail to
    load are reported as the tools build the data loaders, see
    :mod:`mmspectral.cli.data_checks`.)
    """
    priority = 'VERY_HIGH'

    def __init__(self):
        self._out_of_range = Counter()

    def before_val(self, runner) -> None:
        self._out_of_range.clear()

    def before_test(self, runner) -> None:
        self._out_of_range.clear()

    @staticmethod
    def _label_space(loader):
        dataset = loader.dataset
        classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
        while hasattr(dataset, 'dataset') or hasattr(dataset, 'datasets'):
            dataset = getattr(dataset, 'dataset', None) or dataset.datasets[0]
        ignore = getattr(dataset, 'ignore_index', 255)
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
