"""The launch of a run: which process is the main one, a launcher that
contradicts the environment, and multi-process training without GPUs
(gloo) on top of mmengine's Runner.

mmengine assumes a GPU per process: ``init_dist`` calls
``torch.cuda.set_device`` and the Runner passes ``device_ids=[LOCAL_RANK]``
to DDP, which DDP rejects for CPU modules. :func:`setup_cpu_distributed`
starts the gloo process group itself (the Runner then skips ``init_dist``)
and makes the Runner wrap the model in :class:`CPUDistributedDataParallel`.
"""
import os
import subprocess

import torch
import torch.distributed as torch_dist
from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm

from mmspectral.registry import MODEL_WRAPPERS

__all__ = [
    'CPUDistributedDataParallel', 'setup_cpu_distributed',
    'check_launcher', 'launch_rank', 'is_main_process'
]

# what each launcher leaves in the environment of every process
_LAUNCH_ENV = dict(
    pytorch=('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
             'MASTER_PORT'),
    slurm=('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'))


def check_launcher(launcher: str, environ=None):
    """Refuse a ``--launcher`` that contradicts how the process was
    started.

    Raises:
        ValueError: ``none`` in a process torchrun started for several
            (``WORLD_SIZE`` > 1: each would train alone, all in one work
            dir), or ``pytorch`` / ``slurm`` without that launcher's
            environment.
    """
    environ = os.environ if environ is None else environ
    world = environ.get('WORLD_SIZE', '1')
    if launcher == 'none':
        if world.isdigit() and int(world) > 1:
            raise ValueError(
                f'--launcher none in a process started as one of {world} '
                '(WORLD_SIZE is set, e.g. by torchrun or tools/'
                'dist_train.sh): each process would train on its own, all '
                'in one work dir. Drop --launcher none (dist_train.sh '
                'passes --launcher pytorch), or start one process')
        return
    missing = [k for k in _LAUNCH_ENV.get(launcher, ()) if k not in environ]
    if launcher == 'slurm' and missing:
        raise ValueError(
            '--launcher slurm outside a slurm job step (no '
            f'{", ".join(missing)} in the environment): start it with srun '
            '(tools/slurm_train.sh), or use --launcher none or pytorch')
    if launcher == 'pytorch' and missing:
        raise ValueError(
            '--launcher pytorch without torchrun\'s environment (no '
            f'{", ".join(missing)}): start it with tools/dist_train.sh or '
            'torchrun, or use --launcher none for one process')


def launch_rank(launcher: str, environ=None) -> int:
    """This process's global rank as its launcher set it (0 for
    ``none``), readable before the process group exists."""
    environ = os.environ if environ is None else environ
    name = dict(pytorch='RANK', slurm='SLURM_PROCID').get(launcher)
    return int(environ.get(name, 0)) if name else 0


def is_main_process(launcher: str) -> bool:
    """Whether this process checks and locks the work dir: the only
    process of a run without launcher, whatever ``RANK`` the environment
    holds, else rank 0 of the launch."""
    return launch_rank(launcher) == 0


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
    """Set torch's process-group variables from a slurm task's
    environment. mmengine's ``init_dist('slurm')`` sets the same ones, but
    as part of starting the group on a GPU (``torch.cuda.set_device``, and
    without ``SLURM_LOCALID`` a division by the GPU count), so no public
    mmengine function does this for a CPU process."""
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
