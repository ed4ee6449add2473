"""Nothing a training run finds in its work dir is lost.

* A new run refuses a work dir that already holds checkpoints (of the same
  config or another): ``--resume`` continues that run, another ``--work-dir``
  starts a new one.
* A resumed run refuses to start if checkpoints later than its starting
  point exist: going on would write over them.
* Two runs cannot train in one work dir at the same time: the first holds a
  lock file there until it ends (a lock left by a process that no longer
  runs on this machine is taken over).
* Checkpoints are written whole or not at all
  (:class:`AtomicLocalBackend`: a temporary file, then a rename), and
  ``--resume`` without a checkpoint picks the newest checkpoint that reads
  completely: an empty or truncated ``last_checkpoint`` or checkpoint file
  (a full disk, a killed save) is passed over, with a warning.

Only the main process checks and locks; the others write nothing here.
"""
import json
import logging
import os
import os.path as osp
import re
import socket
import time
from glob import glob
from typing import List, Optional, Tuple

from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging import print_log

from mmspectral.checkpoint import CheckpointError, read_checkpoint

__all__ = [
    'WorkDirError', 'is_main_process', 'checkpoint_files',
    'latest_readable_checkpoint', 'WorkDirLock', 'claim_work_dir',
    'AtomicLocalBackend', 'write_checkpoints_atomically'
]

LOCK_NAME = '.mmspectral-train.lock'
ATOMIC_BACKEND = 'mmspectral_atomic_local'
_STEP = re.compile(r'^(iter|epoch)_(\d+)\.pth$')


class WorkDirError(RuntimeError):
    """A run that would destroy what its work dir holds."""


def is_main_process() -> bool:
    """Rank 0 of the launch (torchrun's ``RANK``, slurm's ``SLURM_PROCID``),
    or the only process."""
    rank = os.environ.get('RANK', os.environ.get('SLURM_PROCID', '0'))
    return rank in ('', '0')


def checkpoint_files(work_dir: str) -> List[str]:
    """The checkpoint files in ``work_dir``, newest step first (files
    without a step in their name last, newest first)."""
    def order(path: str) -> Tuple[int, float]:
        step = _step(path)
        return (step[1] if step else -1, osp.getmtime(path))

    return sorted(glob(osp.join(work_dir, '*.pth')), key=order, reverse=True)


def _step(path: str) -> Optional[Tuple[str, int]]:
    match = _STEP.search(osp.basename(path))
    return (match.group(1), int(match.group(2))) if match else None


def _readable(path: str) -> Optional[str]:
    """None if ``path`` reads as a complete checkpoint, else why not."""
    try:
        checkpoint = read_checkpoint(path)
    except (CheckpointError, FileNotFoundError) as err:
        return str(err)
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
        return f'{path} holds no training state'
    return None


def latest_readable_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` continues from: the one ``last_checkpoint``
    names if it reads completely, else the newest one that does (each one
    passed over is logged as a warning). None if the work dir has none."""
    candidates = checkpoint_files(work_dir)
    record = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(record):
        with open(record) as f:
            named = f.read().strip()
        if not named:
            _warn(f'{record} is empty: looking for the newest readable '
                  'checkpoint instead')
        elif osp.isfile(named):
            candidates.insert(0, named)
        else:
            _warn(f'{record} names {named!r}, which does not exist: '
                  'looking for the newest readable checkpoint instead')
    for path in dict.fromkeys(candidates):
        problem = _readable(path)
        if problem is None:
            return path
        _warn(f'passing over {path}: {problem}')
    return None


def _warn(message: str):
    print_log(message, logger='current', level=logging.WARNING)


def _newer_checkpoints(work_dir: str, start: str) -> List[str]:
    """Readable checkpoints in ``work_dir`` of a later step than
    ``start``'s, which a run resumed from ``start`` would write over (a
    partial file holds nothing to keep)."""
    try:
        meta = read_checkpoint(start).get('meta', {})
    except (AttributeError, CheckpointError, FileNotFoundError):
        return []
    later = []
    for path in checkpoint_files(work_dir):
        step = _step(path)
        if step and isinstance(meta.get(step[0]), int) and \
                step[1] > meta[step[0]] and _readable(path) is None:
            later.append(path)
    return later


class WorkDirLock:
    """An exclusive claim on a work dir, held in a lock file there.

    Args:
        work_dir (str): The folder; created if needed.
    """

    def __init__(self, work_dir: str):
        self.work_dir = work_dir
        self.path = osp.join(work_dir, LOCK_NAME)
        self.held = False
        self._made_dir = False

    def acquire(self):
        self._made_dir = not osp.isdir(self.work_dir)
        os.makedirs(self.work_dir, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                if not self._take_over_stale():
                    raise
                continue
            with os.fdopen(fd, 'w') as f:
                json.dump(dict(pid=os.getpid(), host=socket.gethostname(),
                               started=time.strftime('%Y-%m-%d %H:%M:%S')),
                          f)
            self.held = True
            return self
        raise FileExistsError(self.path)

    def _owner(self) -> dict:
        try:
            with open(self.path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def _take_over_stale(self) -> bool:
        owner = self._owner()
        if owner.get('host') != socket.gethostname() or not isinstance(
                owner.get('pid'), int):
            raise WorkDirError(
                f'another run holds {osp.dirname(self.path)} ({self.path}: '
                f'{owner or "unreadable"}); if no run is using it, delete '
                'the lock file')
        try:
            os.kill(owner['pid'], 0)
        except ProcessLookupError:
            _warn(f'taking over {self.path}, left by process {owner["pid"]}'
                  ' which no longer runs')
            os.remove(self.path)
            return True
        except PermissionError:
            pass
        raise WorkDirError(
            f'{osp.dirname(self.path)} is in use by another training run '
            f'(process {owner["pid"]}, started {owner.get("started")}); '
            'wait for it, or give this run another --work-dir')

    def release(self):
        """Remove the lock file, and the work dir if the lock made it and
        the run left nothing in it."""
        if self.held and self._owner().get('pid') == os.getpid():
            os.remove(self.path)
            if self._made_dir and not os.listdir(self.work_dir):
                os.rmdir(self.work_dir)
        self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def claim_work_dir(work_dir: str, resume: Optional[str]) -> Optional[str]:
    """Check that training in ``work_dir`` loses nothing (hold its
    :class:`WorkDirLock` meanwhile).

    Args:
        work_dir (str): The run's work dir.
        resume (str, optional): None for a new run, ``'auto'`` for
            ``--resume`` without a checkpoint, else the checkpoint to resume.

    Returns:
        str | None: The checkpoint to resume from (for ``'auto'``: the
        newest readable one, None if there is none).

    Raises:
        WorkDirError: The run would write over checkpoints.
    """
    existing = checkpoint_files(work_dir) if osp.isdir(work_dir) else []
    record = osp.join(work_dir, 'last_checkpoint')
    if resume is None:
        if existing or osp.isfile(record):
            shown = [osp.basename(p) for p in existing[:4]] or [
                'last_checkpoint'
            ]
            raise WorkDirError(
                f'{work_dir} already holds checkpoints of a run '
                f'({", ".join(shown)}{" ..." if len(existing) > 4 else ""}); '
                'a new run there would write over them. Continue that run '
                'with --resume, or give this one another --work-dir')
        return None
    if resume == 'auto':
        resume = latest_readable_checkpoint(work_dir) if existing or \
            osp.isfile(record) else None
        if resume is None and existing:
            raise WorkDirError(
                f'--resume: none of the checkpoints in {work_dir} reads '
                'completely (see the warnings above); starting over would '
                'write over them. Move them away or give this run another '
                '--work-dir')
        if resume is None:
            return None
    later = _newer_checkpoints(work_dir, resume)
    if later:
        raise WorkDirError(
            f'resuming from {resume} would write over later checkpoints in '
            f'{work_dir}: {", ".join(osp.basename(p) for p in later[:6])}; '
            'resume from the latest one, or give this run another '
            '--work-dir')
    return resume


@register_backend(ATOMIC_BACKEND)
class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend whose ``put`` writes a temporary file
    next to the target and renames it into place, so a failed write (a full
    disk) leaves the previous file, or none, never a partial one."""

    def put(self, obj: bytes, filepath) -> None:
        filepath = str(filepath)
        folder = osp.dirname(osp.abspath(filepath))
        os.makedirs(folder, exist_ok=True)
        tmp = osp.join(folder, f'.{osp.basename(filepath)}.{os.getpid()}.tmp')
        try:
            with open(tmp, 'wb') as f:
                f.write(obj)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, filepath)
        except BaseException:
            if osp.exists(tmp):
                os.remove(tmp)
            raise


def write_checkpoints_atomically(cfg):
    """Make the config's CheckpointHook write through
    :class:`AtomicLocalBackend`, unless it writes elsewhere (its own
    ``backend_args``, or a remote ``out_dir``)."""
    hook = (cfg.get('default_hooks') or {}).get('checkpoint')
    if not hook or hook.get('backend_args') or hook.get(
            'file_client_args') or '://' in str(hook.get('out_dir', '')):
        return
    hook['backend_args'] = dict(backend=ATOMIC_BACKEND)
