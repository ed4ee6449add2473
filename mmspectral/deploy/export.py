"""Exporting a module to ONNX with its spectral layers lowered.

:func:`export_onnx` runs ``torch.onnx.export(..., dynamo=True)`` (the
TorchScript exporter has no rule for ``aten::fft_rfft2``) under a
:func:`~mmspectral.deploy.lowering.spectral_lowering`, after one eager
forward that computes each layer's constants for the export size (see
:mod:`mmspectral.deploy.lowering`), and writes the model with its
``mmspectral`` metadata (a JSON record the runtime helpers read).
"""
import contextlib
import json
import os
import os.path as osp
import tempfile
import warnings
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn

from .lowering import LOWERINGS, spectral_lowering
from .onnx_ops import OPSETS, translation_table

__all__ = ['export_onnx', 'prepare_lowering', 'read_metadata',
           'METADATA_KEY']

METADATA_KEY = 'mmspectral'
# ONNX files above 2 GB keep their weights in a side file
_PROTOBUF_LIMIT = 2**31 - 2**26


def prepare_lowering(module: nn.Module, inputs: Sequence[torch.Tensor]):
    """One eager forward of ``module`` with its lowering in place: every
    spectral layer computes its constants for the sizes it meets."""
    with torch.no_grad():
        return module(*inputs)


@contextlib.contextmanager
def _quiet_export():
    """torch.export warns about every data-dependent Python value of mmdet
    and mmcv code; those are fixed by the export shape on purpose."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        yield


def _dynamic_shapes(inputs, dynamic_batch: bool):
    if not dynamic_batch:
        return None
    batch = torch.export.Dim('batch', min=1, max=1024)
    return tuple({0: batch} for _ in inputs)


def export_onnx(module: nn.Module,
                inputs: Sequence[torch.Tensor],
                path: str,
                lowering: str = 'matmul',
                input_names: Sequence[str] = ('input', ),
                output_names: Optional[Sequence[str]] = None,
                dynamic_batch: bool = False,
                metadata: Optional[Dict] = None):
    """Export ``module(*inputs)`` to the ONNX file ``path``.

    Args:
        module (nn.Module): The model, returning a tensor or a tuple of
            tensors; put in eval mode.
        inputs (Sequence[Tensor]): Example inputs at the export size. With
            ``dynamic_batch`` their batch should be at least 2 (torch.export
            specialises a batch of 1).
        path (str): Output file; must not exist (it is written beside and
            linked into place, so an existing file is never replaced).
        lowering (str): ``'matmul'`` or ``'dft'``, see
            :mod:`mmspectral.deploy.lowering`. Defaults to ``'matmul'``.
        input_names (Sequence[str]): Names of the graph inputs. Defaults to
            ``('input',)``.
        output_names (Sequence[str], optional): Names of the graph outputs.
        dynamic_batch (bool): Make the first axis of every input dynamic
            (everything else stays as exported). Defaults to False.
        metadata (dict, optional): Stored as JSON under ``'mmspectral'`` in
            the model's metadata, with ``lowering`` and ``opset`` added.

    Returns:
        dict: The metadata stored.
    """
    if lowering not in LOWERINGS:
        raise ValueError(f'lowering must be one of {LOWERINGS}, got '
                         f'{lowering!r}')
    if osp.exists(path):
        raise FileExistsError(f'{path} exists; give another path')
    module = module.eval()
    inputs = tuple(inputs)
    with spectral_lowering(module, lowering), _quiet_export():
        prepare_lowering(module, inputs)
        program = torch.onnx.export(
            module,
            inputs,
            dynamo=True,
            opset_version=OPSETS[lowering],
            input_names=list(input_names),
            output_names=None if output_names is None else list(
                output_names),
            dynamic_shapes=_dynamic_shapes(inputs, dynamic_batch),
            custom_translation_table=translation_table(),
            optimize=True,
            verbose=False)
    record = dict(metadata or {}, lowering=lowering, opset=OPSETS[lowering],
                  dynamic_batch=dynamic_batch)
    program.model.metadata_props[METADATA_KEY] = json.dumps(record)
    _save_new(program.model, path)
    return record


def _initializer_bytes(model) -> int:
    return sum(value.const_value.nbytes
               for value in model.graph.initializers.values()
               if value.const_value is not None)


def _save_new(model, path: str):
    """Write the ONNX IR ``model`` to ``path`` without ever replacing a file
    there; weights over protobuf's 2 GB limit go to ``<path>.data``."""
    import onnx_ir as ir
    folder = osp.dirname(osp.abspath(path))
    data = None
    if _initializer_bytes(model) > _PROTOBUF_LIMIT:
        data = osp.basename(path) + '.data'
        if osp.exists(osp.join(folder, data)):
            raise FileExistsError(
                f'{osp.join(folder, data)} exists; give another path')
    fd, tmp = tempfile.mkstemp(suffix='.onnx', dir=folder, prefix='.export-')
    os.close(fd)
    try:
        ir.save(model, tmp, external_data=data)
        os.link(tmp, path)  # fails if the path appeared meanwhile
    finally:
        os.remove(tmp)


def read_metadata(model) -> dict:
    """The ``mmspectral`` record of an exported model (an
    ``onnx.ModelProto`` or a path); empty if it has none."""
    if isinstance(model, (str, os.PathLike)):
        import onnx
        model = onnx.load(str(model), load_external_data=False)
    for entry in model.metadata_props:
        if entry.key == METADATA_KEY:
            return json.loads(entry.value)
    return {}
