"""Multi-process training without GPUs (gloo), on top of mmengine's Runner.

mmengine assumes a GPU per process: ``init_dist`` calls
``torch.cuda.set_device`` and the Runner passes ``device_ids=[LOCAL_RANK]`` to
DDP, which DDP rejects for CPU modules. :func:`setup_cpu_distributed` starts
the gloo process group itself (the Runner then skips ``init_dist``) and swaps
in :class:`CPUDistributedDataParallel`.
"""
import os
import subprocess

import torch
import torch.distributed as torch_dist
from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm

from mmspectral.registry import MODEL_WRAPPERS

__all__ = ['CPUDistributedDataParallel', 'setup_cpu_distributed']


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """:class:`MMDistributedDataParallel` for modules on the CPU: no device
    ids, and SyncBN layers (CUDA only) reverted to BN. Buffers are broadcast
    from rank 0 at every forward, so BN statistics stay the same on every
    process."""

    def __init__(self, module, device_ids=None, broadcast_buffers=True,
                 **kwargs):
        super().__init__(
            module=revert_sync_batchnorm(module),
            device_ids=None,
            broadcast_buffers=broadcast_buffers,
            **kwargs)


def _slurm_env_to_torch_env():
    """Set the torchrun variables from a slurm task's environment."""
    nodes = os.environ['SLURM_NODELIST']
    os.environ.setdefault(
        'MASTER_ADDR',
        subprocess.getoutput(f'scontrol show hostname {nodes} | head -n1'))
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')


def setup_cpu_distributed(cfg, launcher: str) -> bool:
    """Prepare a distributed run on a machine without CUDA.

    Does nothing (and returns False) when ``launcher`` is ``'none'`` or CUDA
    is available. Otherwise initialises a gloo process group from the
    launcher's environment and makes the Runner wrap the model in
    :class:`CPUDistributedDataParallel`.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher == 'slurm':
        _slurm_env_to_torch_env()
    elif launcher != 'pytorch':
        raise ValueError(f'launcher {launcher!r} is not supported without '
                         'GPUs; use pytorch (torchrun) or slurm')
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend='gloo')
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper['type'] = 'mmspectral.CPUDistributedDataParallel'
    wrapper.setdefault('find_unused_parameters',
                       cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper
    return True
