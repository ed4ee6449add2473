"""Nothing a training run finds in its work dir is lost.

Checkpoints go to the work dir, or with ``default_hooks.checkpoint.out_dir``
to ``out_dir/<work dir name>`` (as mmengine's CheckpointHook writes them):
the rules below hold for that checkpoint folder.

* A new run refuses a work dir (or checkpoint folder) that already holds
  checkpoints (of the same config or another): ``--resume`` continues that
  run, another ``--work-dir`` starts a new one.
* A resumed run refuses to start if checkpoints later than its starting
  point exist: going on would write over them.
* Two runs cannot train in one work dir or checkpoint folder at the same
  time: the first holds an OS lock (``flock``) on a lock file in each until
  it ends; the kernel releases it when the process dies, so a crashed run
  leaves nothing to take over. The lock file records its holder for the
  message.
* Checkpoints are written whole or not at all
  (:class:`AtomicLocalBackend`: a temporary file, then a rename); a full
  disk is reported with the file and the earlier checkpoints are kept;
  temporary files a killed save left behind are removed by the next run.
  ``--resume`` without a checkpoint picks the newest checkpoint that reads
  completely: an empty or truncated ``last_checkpoint`` or checkpoint file
  is passed over, with a warning.

Only the main process checks and locks; the other processes of a launch
write nothing here.
"""
import errno
import fcntl
import json
import logging
import os
import os.path as osp
import re
import socket
import time
import zipfile
from glob import glob
from typing import Dict, List, Optional, Tuple

from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging import print_log

from mmspectral.checkpoint import CheckpointError, is_remote, read_checkpoint

__all__ = [
    'WorkDirError', 'checkpoint_dir', 'checkpoint_files',
    'latest_readable_checkpoint', 'WorkDirLock', 'claim_work_dir',
    'remove_stale_temporaries', 'AtomicLocalBackend',
    'write_checkpoints_atomically'
]

LOCK_NAME = '.mmspectral-train.lock'
ATOMIC_BACKEND = 'mmspectral_atomic_local'
_STEP = re.compile(r'^(iter|epoch)_(\d+)\.pth$')
# AtomicLocalBackend's temporary files: .<name>.<pid>.tmp
_TEMPORARY = re.compile(r'^\..+\.\d+\.tmp$')


class WorkDirError(RuntimeError):
    """A run that would destroy what its work dir holds."""


def checkpoint_dir(cfg) -> Optional[str]:
    """Where the config's CheckpointHook writes: the work dir, or
    ``out_dir/<work dir name>`` (None for a remote ``out_dir``, which the
    tools cannot check)."""
    work_dir = osp.abspath(cfg.work_dir)
    hook = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
    out_dir = hook.get('out_dir')
    if not out_dir:
        return work_dir
    if is_remote(out_dir):
        return None
    if osp.abspath(out_dir) == work_dir:
        return work_dir
    return osp.join(osp.abspath(out_dir), osp.basename(work_dir))


def checkpoint_files(folder: str) -> List[str]:
    """The checkpoint files in ``folder``, newest step first (files
    without a step in their name last, newest first)."""
    def order(path: str) -> Tuple[int, float]:
        step = _step(path)
        return (step[1] if step else -1, osp.getmtime(path))

    return sorted(glob(osp.join(folder, '*.pth')), key=order, reverse=True)


def _step(path: str) -> Optional[Tuple[str, int]]:
    match = _STEP.search(osp.basename(path))
    return (match.group(1), int(match.group(2))) if match else None


def _read(path: str, cache: Dict[str, dict]) -> Optional[str]:
    """None if ``path`` reads as a complete training checkpoint (kept in
    ``cache``), else why not."""
    try:
        checkpoint = read_checkpoint(path)
    except (CheckpointError, FileNotFoundError) as err:
        return str(err)
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
        return f'{path} holds no training state'
    cache[path] = checkpoint
    return None


def _complete(path: str) -> bool:
    """Whether ``path`` is a whole checkpoint file, from its structure
    only: a zip archive (torch.save's format) whose central directory, at
    its end, reads; an older raw pickle counts if it is not empty."""
    try:
        with zipfile.ZipFile(path):
            return True
    except (zipfile.BadZipFile, OSError):
        pass
    try:
        with open(path, 'rb') as f:
            return f.read(1) == b'\x80'
    except OSError:
        return False


def latest_readable_checkpoint(work_dir: str,
                               folder: Optional[str] = None,
                               cache: Optional[Dict[str, dict]] = None
                               ) -> Optional[str]:
    """The checkpoint ``--resume`` continues from: the one
    ``work_dir/last_checkpoint`` names if it reads completely, else the
    newest one in ``folder`` (the checkpoint folder, default ``work_dir``)
    that does (each one passed over is logged as a warning). None if there
    is none.

    Args:
        cache (dict, optional): Filled with the checkpoint read, by path.
    """
    cache = {} if cache is None else cache
    candidates = checkpoint_files(folder or work_dir)
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
        problem = _read(path, cache)
        if problem is None:
            return path
        _warn(f'passing over {path}: {problem}')
    return None


def _warn(message: str):
    print_log(message, logger='current', level=logging.WARNING)


def _later_checkpoints(folder: str, start: str,
                       cache: Dict[str, dict]) -> List[str]:
    """Whole checkpoints in ``folder`` of a later step than ``start``'s,
    which a run resumed from ``start`` would write over (a partial file
    holds nothing to keep)."""
    if start not in cache and _read(start, cache) is not None:
        return []
    meta = cache[start].get('meta')
    if not isinstance(meta, dict):
        return []
    later = []
    for path in checkpoint_files(folder):
        step = _step(path)
        done = meta.get(step[0]) if step else None
        # a count that cannot be right is refused when the checkpoint is
        # checked, not taken for a step here
        if isinstance(done, int) and done >= 0 and step[1] > done and \
                _complete(path):
            later.append(path)
    return later


class WorkDirLock:
    """An exclusive claim on a folder: an OS lock (``flock``) on the lock
    file there, which the kernel releases when the holding process ends,
    however it ends. The file holds the holder's pid, host and start time
    for the message a second run gets.

    Args:
        folder (str): The folder; created if needed (and removed again on
            release if the lock made it and it is still empty).
    """

    def __init__(self, folder: str):
        self.folder = folder
        self.path = osp.join(folder, LOCK_NAME)
        self.held = False
        self._fd = None
        self._made_dir = False

    def acquire(self):
        self._made_dir = not osp.isdir(self.folder)
        os.makedirs(self.folder, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise WorkDirError(
                    f'{self.folder} is in use by another training run '
                    f'({self._owner()}; lock {self.path}); wait for it, or '
                    'give this run another --work-dir') from None
            # a releasing holder removes the file before it unlocks: then
            # this lock is on a file no longer there, so take the new one
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        record = json.dumps(dict(pid=os.getpid(), host=socket.gethostname(),
                                 started=time.strftime('%Y-%m-%d %H:%M:%S')))
        os.ftruncate(fd, 0)
        os.write(fd, record.encode())
        self._fd = fd
        self.held = True
        return self

    def _owner(self) -> str:
        try:
            with open(self.path) as f:
                owner = json.load(f)
            return (f'process {owner["pid"]} on {owner["host"]}, started '
                    f'{owner["started"]}')
        except (OSError, ValueError, KeyError, TypeError):
            return 'holder unknown'

    def release(self):
        """Remove the lock file and unlock, and remove the folder if the
        lock made it and the run left nothing in it."""
        if not self.held:
            return
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd, self.held = None, False
        if self._made_dir and not os.listdir(self.folder):
            os.rmdir(self.folder)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def remove_stale_temporaries(folder: str):
    """Remove the temporary files of checkpoint saves that were killed
    (``.<name>.<pid>.tmp``); only call it holding the folder's lock."""
    if not osp.isdir(folder):
        return
    for name in os.listdir(folder):
        if _TEMPORARY.match(name):
            os.remove(osp.join(folder, name))
            _warn(f'removed {osp.join(folder, name)}, left by a checkpoint '
                  'save that did not finish')


def claim_work_dir(work_dir: str, resume: Optional[str],
                   folder: Optional[str] = None,
                   cache: Optional[Dict[str, dict]] = None) -> Optional[str]:
    """Check that training in ``work_dir`` loses nothing (hold the
    :class:`WorkDirLock` of ``work_dir`` and of ``folder`` meanwhile).

    Args:
        work_dir (str): The run's work dir.
        resume (str, optional): None for a new run, ``'auto'`` for
            ``--resume`` without a checkpoint, else the checkpoint to resume.
        folder (str, optional): Where the checkpoints are written (see
            :func:`checkpoint_dir`). Defaults to ``work_dir``.
        cache (dict, optional): Filled with the checkpoints read, by path
            (the one to resume from among them).

    Returns:
        str | None: The checkpoint to resume from (for ``'auto'``: the
        newest readable one, None if there is none).

    Raises:
        WorkDirError: The run would write over checkpoints.
    """
    folder = folder or work_dir
    cache = {} if cache is None else cache
    existing = checkpoint_files(folder) if osp.isdir(folder) else []
    record = osp.join(work_dir, 'last_checkpoint')
    if resume is None:
        if existing or osp.isfile(record):
            shown = [osp.basename(p) for p in existing[:4]] or [
                'last_checkpoint'
            ]
            where = work_dir if folder == work_dir else \
                f'{folder} (the checkpoint folder of {work_dir})'
            raise WorkDirError(
                f'{where} already holds checkpoints of a run '
                f'({", ".join(shown)}{" ..." if len(existing) > 4 else ""}); '
                'a new run there would write over them. Continue that run '
                'with --resume, or give this one another --work-dir')
        return None
    if resume == 'auto':
        resume = latest_readable_checkpoint(work_dir, folder, cache) if \
            existing or osp.isfile(record) else None
        if resume is None and existing:
            raise WorkDirError(
                f'--resume: none of the checkpoints in {folder} reads '
                'completely (see the warnings above); starting over would '
                'write over them. Move them away or give this run another '
                '--work-dir')
        if resume is None:
            return None
    later = _later_checkpoints(folder, resume, cache)
    if later:
        raise WorkDirError(
            f'resuming from {resume} would write over later checkpoints in '
            f'{folder}: {", ".join(osp.basename(p) for p in later[:6])}; '
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
        except BaseException as err:
            if osp.exists(tmp):
                os.remove(tmp)
            if isinstance(err, OSError) and err.errno in (errno.ENOSPC,
                                                          errno.EDQUOT):
                raise OSError(
                    err.errno,
                    f'No space left on the device to write {filepath} '
                    f'({len(obj) / 2**20:.1f} MiB): it was not written, and '
                    f'the checkpoints written before it in {folder} are '
                    'intact. Free some space and continue with --resume'
                ) from None
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
