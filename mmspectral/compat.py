"""What ``import mmspectral`` changes in the process: one documented
function, :func:`route_checkpoint_loading`.

mmengine's ``CheckpointLoader`` reads local files with a bare ``torch.load``
and URLs with ``torch.hub.load_state_dict_from_url(weights_only=False)``, so
a checkpoint that ``load_from``, ``--resume`` or ``init_cfg=dict(type=
'Pretrained')`` names by URL can run code, and mmengine's own checkpoints
(its ``HistoryBuffer`` message hub) fail a weights-only load. Users of the
libraries' own tools (mmdet's ``tools/train.py`` with
``custom_imports=dict(imports=['mmspectral'])``) get mmspectral's reading for
every scheme through this function, which the package import calls.
"""
__all__ = ['route_checkpoint_loading', 'load_from_mmspectral']


def load_from_mmspectral(filename: str, map_location=None):
    """mmengine's loader signature for
    :func:`mmspectral.checkpoint.read_checkpoint`."""
    from mmspectral.checkpoint import read_checkpoint
    return read_checkpoint(filename, map_location)


def route_checkpoint_loading():
    """Make mmengine's ``CheckpointLoader`` read every checkpoint with
    :func:`mmspectral.checkpoint.read_checkpoint`.

    This is all that ``import mmspectral`` changes outside its own
    registries: :func:`load_from_mmspectral` becomes the loader of local
    files (prefix ``''``), of every scheme registered so far (mmengine's
    ``http://``, ``https://``, ``pavi://``, ``s3://``, ``petrel://``,
    ``torchvision://``, ``modelzoo://``, ``open-mmlab://``,
    ``openmmlab://``, ``mmcls://``), and of ``file://`` (which mmengine
    does not register). torch's process-wide weights-only allow-list is
    left as it is: each read allows what checkpoints hold for itself only.
    Calling it again changes nothing more.
    """
    from mmengine.runner import CheckpointLoader

    from mmspectral.checkpoint_sources import SCHEMES

    # register_scheme has no way to list the registered schemes: read them,
    # so that a scheme another library added is routed too
    prefixes = set(CheckpointLoader._schemes) | {''} | set(SCHEMES)
    CheckpointLoader.register_scheme(
        prefixes=sorted(prefixes), loader=load_from_mmspectral, force=True)
