"""Checkpoints named by URL, as local files, with nothing unpickled.

Every scheme mmengine's ``CheckpointLoader`` registers is resolved the way
mmengine resolves it, but ends in a local file that
:func:`mmspectral.checkpoint.read_checkpoint` reads like any other (its
pickle checked, then loaded weights-only), where mmengine's loaders end in
``torch.hub.load_state_dict_from_url(weights_only=False)`` or a bare
``torch.load``:

* ``http://``, ``https://``: downloaded with
  :func:`torch.hub.download_url_to_file` (no unpickling) into torch's hub
  cache, ``$TORCH_HOME/hub/checkpoints/<file name>``, where mmengine and
  ``torch.hub`` keep them too; a file already there is read from there,
  through the same checks;
* ``file://``: the local file;
* ``torchvision://``, ``modelzoo://``, ``open-mmlab://``, ``openmmlab://``,
  ``mmcls://``: the URL (or, for open-mmlab, the file under mmengine's
  home) mmengine's model tables give the name, then as above (``mmcls://``
  checkpoints get their keys renamed as mmengine does);
* ``pavi://``, ``s3://``, ``petrel://`` (with an optional ``name:``
  prefix): fetched with their clients into a temporary folder.
"""
import contextlib
import os
import os.path as osp
import re
import sys
import tempfile
from typing import Callable, Iterator, Tuple
from urllib.error import URLError
from urllib.parse import urlparse
from urllib.request import url2pathname

import torch

from mmspectral.checkpoint import CheckpointError

__all__ = ['SCHEMES', 'local_copy', 'download_to_cache']

HTTP = ('http://', 'https://')
_PETREL = r'(\S+\:)?(s3|petrel)://'
# the prefixes mmengine 0.10's CheckpointLoader registers, and file://
SCHEMES = ('http://', 'https://', 'file://', 'torchvision://', 'modelzoo://',
           'open-mmlab://', 'openmmlab://', 'mmcls://', 'pavi://',
           r'(\S+\:)?s3://', r'(\S+\:)?petrel://')


def _unchanged(checkpoint):
    return checkpoint


@contextlib.contextmanager
def local_copy(name: str) -> Iterator[Tuple[str, Callable]]:
    """Yield ``(path, adapt)``: a local file holding the checkpoint ``name``
    names, and what to apply to the checkpoint read from it.

    Raises:
        CheckpointError: An unknown scheme or model name, or a failed
            download, naming ``name``.
    """
    if name.startswith(HTTP):
        yield download_to_cache(name), _unchanged
    elif name.startswith('file://'):
        yield _file_url_path(name), _unchanged
    elif name.startswith(('torchvision://', 'modelzoo://')):
        yield download_to_cache(_torchvision_url(name)), _unchanged
    elif name.startswith(('open-mmlab://', 'openmmlab://')):
        location = _openmmlab_location(name)
        yield (download_to_cache(location)
               if location.startswith(HTTP) else location), _unchanged
    elif name.startswith('mmcls://'):
        from mmengine.runner import checkpoint as mmengine_checkpoint
        url = _model_table_url(name, 'mmcls://', 'mmcls',
                               mmengine_checkpoint.get_mmcls_models())
        yield (download_to_cache(url),
               mmengine_checkpoint._process_mmcls_checkpoint)
    elif name.startswith('pavi://'):
        with _pavi_download(name) as path:
            yield path, _unchanged
    elif re.match(_PETREL, name):
        with _petrel_download(name) as path:
            yield path, _unchanged
    else:
        known = ', '.join(s.replace(r'(\S+\:)?', '') for s in SCHEMES)
        raise CheckpointError(
            f'{name}: unknown checkpoint scheme; checkpoints are local '
            f'files or URLs of these schemes: {known}')


def download_to_cache(url: str) -> str:
    """The file at ``url`` in torch's hub cache, downloaded if not there yet
    (in a distributed run: by rank 0 first, the others after a barrier).
    Nothing is unpickled."""
    from mmengine.dist import get_dist_info
    file_name = osp.basename(urlparse(url).path)
    if not file_name:
        raise CheckpointError(f'{url} names no file to download')
    folder = osp.join(torch.hub.get_dir(), 'checkpoints')
    cached = osp.join(folder, file_name)
    rank, world_size = get_dist_info()
    if rank == 0 and not osp.isfile(cached):
        _download(url, cached)
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0 and not osp.isfile(cached):
            _download(url, cached)
    return cached


def _download(url: str, path: str):
    from mmengine.logging import print_log
    print_log(f'Downloading {url} to {path}', logger='current')
    try:
        os.makedirs(osp.dirname(path), exist_ok=True)
        # writes a temporary file and renames it when complete
        torch.hub.download_url_to_file(
            url, path, progress=sys.stderr.isatty())
    except (URLError, OSError, ValueError) as err:
        reason = getattr(err, 'reason', None) or err
        raise CheckpointError(f'cannot download {url}: {reason}') from None


def _file_url_path(url: str) -> str:
    parsed = urlparse(url)
    if parsed.netloc not in ('', 'localhost'):
        raise CheckpointError(f'{url}: file:// URLs of other hosts '
                              f'({parsed.netloc}) are not read')
    return url2pathname(parsed.path)


def _model_table_url(name: str, prefix: str, table_name: str,
                     table: dict) -> str:
    model = name[len(prefix):]
    if model not in table:
        raise CheckpointError(
            f'{name}: {table_name} has no checkpoint named {model!r}')
    return table[model]


def _torchvision_url(name: str) -> str:
    from mmengine.runner import checkpoint as mmengine_checkpoint
    prefix = 'modelzoo://' if name.startswith('modelzoo://') else \
        'torchvision://'
    return _model_table_url(name, prefix, 'torchvision',
                            mmengine_checkpoint.get_torchvision_models())


def _openmmlab_location(name: str) -> str:
    """The URL, or the file under mmengine's home, of an open-mmlab name
    (a deprecated name replaced by its successor, as mmengine does)."""
    from mmengine.runner import checkpoint as mmengine_checkpoint
    prefix = 'open-mmlab://' if name.startswith('open-mmlab://') else \
        'openmmlab://'
    model = name[len(prefix):]
    model = mmengine_checkpoint.get_deprecated_model_names().get(model, model)
    location = _model_table_url(prefix + model, prefix, 'open-mmlab',
                                mmengine_checkpoint.get_external_models())
    if location.startswith(HTTP):
        return location
    return osp.join(mmengine_checkpoint._get_mmengine_home(), location)


@contextlib.contextmanager
def _pavi_download(name: str) -> Iterator[str]:
    try:
        from pavi import modelcloud
    except ImportError:
        raise CheckpointError(f'{name}: reading pavi:// checkpoints needs '
                              'the pavi package') from None
    model = modelcloud.get(name[len('pavi://'):])
    with tempfile.TemporaryDirectory() as folder:
        path = osp.join(folder, osp.basename(str(model.name)) or 'model')
        model.download(path)
        yield path


@contextlib.contextmanager
def _petrel_download(name: str) -> Iterator[str]:
    from mmengine.fileio import get_file_backend
    try:
        data = get_file_backend(
            name, backend_args={'backend': 'petrel'}).get(name)
    except ImportError as err:
        raise CheckpointError(f'{name}: {err}') from None
    with tempfile.TemporaryDirectory() as folder:
        path = osp.join(folder, 'checkpoint')
        with open(path, 'wb') as f:
            f.write(data)
        yield path
