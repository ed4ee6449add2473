"""From a config (and checkpoint) to the graph that is exported.

:func:`deploy_graph` picks the wrapper of :mod:`.wrappers` for the config's
model, and :func:`export_config` exports it with the metadata the runtime
helpers need (preprocessing, classes, the export size, the lowering).
"""
import math
import os.path as osp
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from mmspectral.models.backbones.base import PAD_MARK
from .valid_region import fix_valid_region
from .wrappers import (BackboneGraph, ClassifierGraph, MaskRCNNGraph,
                       RetinaNetGraph, SegmentorGraph)

__all__ = ['DeployGraph', 'deploy_graph', 'export_config', 'model_task',
           'network_shape', 'preprocess_meta', 'load_model',
           'example_inputs']


class DeployGraph(NamedTuple):
    """What :func:`export_onnx` needs for one model."""
    module: nn.Module
    task: str
    input_names: Tuple[str, ...]
    output_names: Tuple[str, ...]


def model_task(cfg, model: nn.Module) -> str:
    """The wrapper task of a built model (see :data:`wrappers.TASKS`)."""
    scope = cfg.get('default_scope')
    name = type(model).__name__
    if scope == 'mmpretrain' and hasattr(model, 'head'):
        return 'classifier'
    if scope == 'mmseg' and name == 'EncoderDecoder':
        return 'segmentor'
    if scope == 'mmdet' and hasattr(model, 'roi_head'):
        return 'mask_rcnn'
    if scope == 'mmdet' and hasattr(model, 'bbox_head'):
        return 'retinanet'
    raise NotImplementedError(
        f'{name} (default_scope {scope!r}) is not exported; supported: '
        'mmpretrain classifiers, mmseg EncoderDecoder, mmdet RetinaNet-like '
        'single-stage and Faster/Mask R-CNN two-stage detectors, or '
        '--backbone-only')


def deploy_graph(cfg, model: nn.Module,
                 backbone_only: bool = False) -> DeployGraph:
    """The wrapper of ``model`` and its graph input and output names."""
    if backbone_only:
        return DeployGraph(BackboneGraph(model.backbone), 'backbone',
                           ('input', ), None)
    task = model_task(cfg, model)
    if task == 'classifier':
        return DeployGraph(ClassifierGraph(model), task, ('input', ),
                           ('logits', ))
    if task == 'segmentor':
        return DeployGraph(SegmentorGraph(model), task, ('input', ),
                           ('seg_logits', ))
    if task == 'retinanet':
        return DeployGraph(RetinaNetGraph(model), task,
                           ('input', 'img_shape'), ('dets', 'labels'))
    masks = ('masks', ) if model.roi_head.with_mask else ()
    outputs = ('dets', 'labels') + masks
    return DeployGraph(MaskRCNNGraph(model), task, ('input', 'img_shape'),
                       outputs)


def _preprocessor(cfg) -> dict:
    """The test-time normalisation and padding of the config's data
    preprocessor (mmseg pads test images only by its ``test_cfg``)."""
    pre = cfg.model.get('data_preprocessor') or {}
    if cfg.get('default_scope') == 'mmseg':
        divisor = (pre.get('test_cfg') or {}).get('size_divisor')
    else:
        divisor = pre.get('pad_size_divisor')
    return dict(
        mean=[float(v) for v in pre.get('mean', (0., 0., 0.))],
        std=[float(v) for v in pre.get('std', (1., 1., 1.))],
        bgr_to_rgb=bool(pre.get('bgr_to_rgb', pre.get('to_rgb', False))),
        size_divisor=int(divisor or 1),
        pad_value=_graph_pad_value(pre.get('pad_value', pre.get('pad_val',
                                                                0))))


def _graph_pad_value(value) -> float:
    """The config's padding value, or 0 where it marks the padding for
    ``valid_region``: an exported graph's region is fixed (see
    :mod:`.valid_region`), it needs no mark."""
    value = float(value)
    return 0. if math.isnan(value) or value <= PAD_MARK else value


def network_shape(cfg, shape: Sequence[int]) -> Tuple[int, int]:
    """The graph's input size for images of ``shape``: padded up to the
    preprocessor's size divisor, as the model's data preprocessor pads."""
    divisor = _preprocessor(cfg)['size_divisor']
    return tuple(int(math.ceil(s / divisor) * divisor) for s in shape)


def preprocess_meta(cfg, task: str, image_shape: Sequence[int]) -> dict:
    """The part of an export's metadata that
    :func:`mmspectral.deploy.runtime.preprocess` reads: the task, the image
    and graph input sizes and the normalisation."""
    return dict(task=task, input_shape=list(network_shape(cfg, image_shape)),
                image_shape=[int(s) for s in image_shape],
                **_preprocessor(cfg))


def _dataset_meta(cfg) -> dict:
    """Class names (and the palette) of the config's test dataset."""
    import importlib
    dataset = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    meta = dict(dataset.get('metainfo') or {})
    kind = dataset.get('type')
    if 'classes' not in meta and isinstance(kind, str):
        scope = dataset.get('_scope_') or cfg.get('default_scope')
        try:  # the library's own registry imports its datasets
            registry = importlib.import_module(f'{scope}.registry').DATASETS
            cls = registry.get(kind.split('.')[-1])
        except (ImportError, AttributeError, KeyError):
            cls = None
        meta = dict(getattr(cls, 'METAINFO', {}), **meta)
    out = {}
    if meta.get('classes'):
        out['classes'] = [str(c) for c in meta['classes']]
    if meta.get('palette'):
        out['palette'] = [[int(v) for v in p] for p in meta['palette']]
    return out


def _test_cfg(cfg, task: str) -> dict:
    """The thresholds the runtime helpers apply after the graph."""
    test = cfg.model.get('test_cfg') or {}
    if task == 'mask_rcnn':
        rcnn = test.get('rcnn') or {}
        return dict(score_thr=float(rcnn.get('score_thr', 0.05)),
                    mask_thr_binary=float(rcnn.get('mask_thr_binary', 0.5)))
    if task == 'retinanet':
        return dict(score_thr=float(test.get('score_thr', 0.05)))
    return {}


def _num_classes(model, task: str) -> Optional[int]:
    """The head's class count, where it has one."""
    head = dict(classifier='head', segmentor='decode_head',
                retinanet='bbox_head').get(task)
    if task == 'mask_rcnn':
        head = model.roi_head.bbox_head
    elif head:
        head = getattr(model, head)
    count = getattr(head, 'num_classes', None)
    if count is None and task == 'classifier':
        fc = getattr(head, 'fc', None)  # heads that keep only their layer
        count = getattr(fc, 'out_features', None)
    return None if count is None else int(count)


def _backbone_name(cfg, model) -> str:
    """The backbone's registered name."""
    name = (cfg.model.get('backbone') or {}).get('type')
    if isinstance(name, str):
        return name.split('.')[-1]
    return type(model.backbone).__name__


def load_model(cfg, checkpoint: Optional[str] = None) -> nn.Module:
    """The config's model in eval mode, with ``checkpoint``'s weights
    (checked to fit, read weights-only) or, without one, its random
    initialisation (enough to check an export, not to predict)."""
    from mmspectral.checkpoint import state_dict_of
    from mmspectral.cli.checkpoints import check_checkpoint_matches
    from mmspectral.cli.runner import build_model
    model = build_model(cfg)
    if checkpoint is not None:
        model.load_state_dict(state_dict_of(check_checkpoint_matches(
            model, checkpoint, what=f'the model of {cfg.filename}')))
    return model.eval()


def example_inputs(task: str, shape: Tuple[int, int],
                   batch: int = 1,
                   image_shape: Optional[Sequence[int]] = None
                   ) -> List[torch.Tensor]:
    """Inputs to trace a graph with: a smooth normalised image batch (and
    the valid image size for detectors)."""
    generator = torch.Generator().manual_seed(0)
    coarse = torch.randn(batch, 3, max(shape[0] // 16, 1),
                         max(shape[1] // 16, 1), generator=generator)
    image = torch.nn.functional.interpolate(
        coarse, size=shape, mode='bilinear', align_corners=False)
    inputs = [image]
    if task in ('retinanet', 'mask_rcnn'):
        valid = image_shape or shape
        inputs.append(torch.tensor([list(valid)] * batch,
                                   dtype=torch.float32))
    return inputs


def export_config(cfg, path: str, image_shape: Sequence[int],
                  checkpoint: Optional[str] = None,
                  lowering: str = 'matmul',
                  dynamic_batch: bool = False,
                  backbone_only: bool = False,
                  model: Optional[nn.Module] = None) -> dict:
    """Export the model of ``cfg`` for images of ``image_shape``.

    Args:
        cfg (Config): The model's config.
        path (str): The ONNX file to write (must not exist).
        image_shape (Sequence[int]): ``(H, W)``; the graph input is this
            size padded up to the preprocessor's size divisor.
        checkpoint (str, optional): Weights to load. Defaults to None:
            random weights.
        lowering (str): ``'matmul'`` or ``'dft'``. Defaults to ``'matmul'``.
        dynamic_batch (bool): Dynamic batch axis. Defaults to False.
        backbone_only (bool): Export ``model.backbone`` only. Defaults to
            False.
        model (nn.Module, optional): The built model, if already at hand
            (then ``checkpoint`` is ignored). A backbone's
            ``valid_region`` is fixed to ``image_shape`` in it (see
            :mod:`.valid_region`).

    Returns:
        dict: The metadata stored in the file (see
        :func:`~mmspectral.deploy.export.export_onnx`).
    """
    from .export import export_onnx
    if model is None:
        model = load_model(cfg, checkpoint)
    input_shape = network_shape(cfg, image_shape)
    fix_valid_region(model, image_shape, input_shape, backbone_only)
    graph = deploy_graph(cfg, model, backbone_only)
    inputs = example_inputs(graph.task, input_shape,
                            2 if dynamic_batch else 1, image_shape)
    metadata = dict(
        preprocess_meta(cfg, graph.task, image_shape),
        input_names=list(graph.input_names),
        config=osp.basename(cfg.filename or ''),
        checkpoint=osp.basename(checkpoint) if checkpoint else None,
        backbone=_backbone_name(cfg, model),
        **_dataset_meta(cfg), **_test_cfg(cfg, graph.task))
    if graph.task == 'segmentor':
        metadata['align_corners'] = bool(model.decode_head.align_corners)
    classes = _num_classes(model, graph.task)
    if classes:
        metadata['num_classes'] = classes
    return export_onnx(graph.module, inputs, path, lowering,
                       graph.input_names, graph.output_names, dynamic_batch,
                       metadata)
