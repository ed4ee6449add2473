"""What a training run finds in its work dir is never lost (the unit
rules; tests/test_tools.py runs them through tools/train.py)."""
import json
import os
import subprocess
import sys

import pytest
import torch

from mmspectral.cli import (AtomicLocalBackend, WorkDirError, WorkDirLock,
                            claim_work_dir, latest_readable_checkpoint)


def save(path, step, kind='iter'):
    torch.save({'state_dict': {'w': torch.ones(64)},
                'meta': {kind: step}}, path)
    return path


def test_new_run_refuses_a_work_dir_with_checkpoints(tmp_path):
    assert claim_work_dir(str(tmp_path / 'fresh'), None) is None
    save(tmp_path / 'iter_4.pth', 4)
    with pytest.raises(WorkDirError, match='already holds checkpoints.*'
                       'iter_4.pth.*--resume'):
        claim_work_dir(str(tmp_path), None)
    only_record = tmp_path / 'other'
    only_record.mkdir()
    (only_record / 'last_checkpoint').write_text('')
    with pytest.raises(WorkDirError, match='last_checkpoint'):
        claim_work_dir(str(only_record), None)


def test_resume_refuses_to_write_over_later_checkpoints(tmp_path):
    early = save(tmp_path / 'iter_2.pth', 2)
    save(tmp_path / 'iter_4.pth', 4)
    with pytest.raises(WorkDirError, match='later checkpoints.*iter_4.pth'):
        claim_work_dir(str(tmp_path), str(early))
    assert claim_work_dir(str(tmp_path), str(tmp_path / 'iter_4.pth')) == \
        str(tmp_path / 'iter_4.pth')


@pytest.mark.parametrize('record', ['', 'truncated', 'missing'])
def test_resume_falls_back_to_the_newest_readable_checkpoint(tmp_path,
                                                             record):
    good = save(tmp_path / 'iter_2.pth', 2)
    whole = save(tmp_path / 'whole.pth', 4).read_bytes()
    (tmp_path / 'iter_4.pth').write_bytes(whole[:len(whole) // 2])
    (tmp_path / 'iter_6.pth').write_bytes(b'')  # disk full
    (tmp_path / 'whole.pth').unlink()
    named = {'': '', 'truncated': str(tmp_path / 'iter_4.pth'),
             'missing': str(tmp_path / 'iter_8.pth')}[record]
    (tmp_path / 'last_checkpoint').write_text(named)
    assert latest_readable_checkpoint(str(tmp_path)) == str(good)
    assert claim_work_dir(str(tmp_path), 'auto') == str(good)


def test_resume_without_anything_readable_is_refused(tmp_path):
    (tmp_path / 'iter_2.pth').write_bytes(b'partial')
    with pytest.raises(WorkDirError, match='none of the checkpoints'):
        claim_work_dir(str(tmp_path), 'auto')
    assert claim_work_dir(str(tmp_path / 'empty'), 'auto') is None


def test_lock_is_exclusive_and_released(tmp_path):
    work = tmp_path / 'work'
    with WorkDirLock(str(work)):
        with pytest.raises(WorkDirError, match='in use by another training'):
            WorkDirLock(str(work)).acquire()
        assert (work / '.mmspectral-train.lock').exists()
    assert not work.exists()  # made by the lock, left empty: removed


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    lock = tmp_path / '.mmspectral-train.lock'
    lock.write_text(json.dumps(dict(pid=dead.pid,
                                    host=os.uname().nodename)))
    with WorkDirLock(str(tmp_path)) as held:
        assert held.held
    assert not lock.exists()


def test_atomic_backend_leaves_the_old_file_when_a_write_fails(
        tmp_path, monkeypatch):
    target = tmp_path / 'iter_1.pth'
    target.write_bytes(b'previous')
    backend = AtomicLocalBackend()

    def full_disk(fd):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(os, 'fsync', full_disk)
    with pytest.raises(OSError, match='No space'):
        backend.put(b'new contents', str(target))
    assert target.read_bytes() == b'previous'
    assert os.listdir(tmp_path) == ['iter_1.pth']
    monkeypatch.undo()
    backend.put(b'new contents', str(target))
    assert target.read_bytes() == b'new contents'


# -- the OS lock ------------------------------------------------------------

HOLD = '''
import os, sys, time
from mmspectral.cli import WorkDirError, WorkDirLock
print('ready', flush=True)
while not os.path.exists(sys.argv[2]):  # all start together
    pass
try:
    WorkDirLock(sys.argv[1]).acquire()
except WorkDirError as err:
    print('refused', err, flush=True)
    sys.exit(0)
print('held', flush=True)
time.sleep(float(sys.argv[3]))
'''


def hold(folder, go, seconds):
    """A process that takes the lock of ``folder`` once the file ``go``
    exists, and holds it ``seconds``."""
    proc = subprocess.Popen(
        [sys.executable, '-c', HOLD, str(folder), str(go), str(seconds)],
        stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'ready'
    return proc


def test_two_processes_racing_for_a_stale_lock_one_wins(tmp_path):
    """Both see the record of a dead holder at the same moment: exactly one
    holds the lock, in every round."""
    for round_ in range(3):
        folder = tmp_path / f'round{round_}'
        folder.mkdir()
        dead = subprocess.Popen([sys.executable, '-c', 'pass'])
        dead.wait()
        (folder / '.mmspectral-train.lock').write_text(json.dumps(
            dict(pid=dead.pid, host=os.uname().nodename)))
        go = tmp_path / f'go{round_}'
        procs = [hold(folder, go, 2) for _ in range(2)]
        go.touch()
        answers = sorted(p.communicate()[0].split()[0] for p in procs)
        assert answers == ['held', 'refused'], answers


def test_a_live_record_without_a_lock_is_no_obstacle(tmp_path):
    """A record naming a live process (a pid reused after a crash) does not
    block: only the kernel's lock decides."""
    (tmp_path / '.mmspectral-train.lock').write_text(json.dumps(
        dict(pid=os.getppid(), host=os.uname().nodename, started='then')))
    with WorkDirLock(str(tmp_path)) as held:
        record = json.loads((tmp_path / '.mmspectral-train.lock').read_text())
        assert held.held and record['pid'] == os.getpid()


def test_the_lock_of_a_killed_process_is_free_at_once(tmp_path):
    import signal
    go = tmp_path / 'go'
    go.touch()
    holder = hold(tmp_path / 'work', go, 60)
    assert holder.stdout.readline().strip() == 'held'
    with pytest.raises(WorkDirError, match=f'process {holder.pid} on'):
        WorkDirLock(str(tmp_path / 'work')).acquire()
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with WorkDirLock(str(tmp_path / 'work')) as held:
        assert held.held


# -- the checkpoint folder ----------------------------------------------------

def test_checkpoints_under_out_dir_are_guarded(tmp_path):
    from mmengine.config import Config

    from mmspectral.cli import checkpoint_dir
    hook = dict(type='CheckpointHook', out_dir=str(tmp_path / 'out'))
    cfg = Config(dict(work_dir=str(tmp_path / 'a' / 'run'),
                      default_hooks=dict(checkpoint=hook)))
    folder = checkpoint_dir(cfg)
    assert folder == str(tmp_path / 'out' / 'run')  # as mmengine writes
    os.makedirs(folder)
    save(tmp_path / 'out' / 'run' / 'iter_4.pth', 4)
    other_work_dir = str(tmp_path / 'b' / 'run')
    with pytest.raises(WorkDirError, match='checkpoint folder of.*iter_4'):
        claim_work_dir(other_work_dir, None, folder)
    assert claim_work_dir(other_work_dir, 'auto', folder) == \
        os.path.join(folder, 'iter_4.pth')


def test_stale_temporaries_are_removed(tmp_path):
    from mmspectral.cli.workdir import remove_stale_temporaries
    (tmp_path / '.iter_3.pth.4242.tmp').write_bytes(b'half a save')
    (tmp_path / 'iter_2.pth').write_bytes(b'kept')
    remove_stale_temporaries(str(tmp_path))
    assert os.listdir(tmp_path) == ['iter_2.pth']


def test_a_full_disk_names_the_file_and_keeps_the_others(tmp_path,
                                                         monkeypatch):
    import errno

    def full_disk(fd):
        raise OSError(errno.ENOSPC, 'No space left on device')

    (tmp_path / 'iter_1.pth').write_bytes(b'earlier')
    monkeypatch.setattr(os, 'fsync', full_disk)
    with pytest.raises(OSError) as err:
        AtomicLocalBackend().put(b'x' * 2**20, str(tmp_path / 'iter_2.pth'))
    assert err.value.errno == errno.ENOSPC
    assert f'write {tmp_path / "iter_2.pth"} (1.0 MiB)' in str(err.value)
    assert 'written before it' in str(err.value) and 'intact' in str(
        err.value)
    assert os.listdir(tmp_path) == ['iter_1.pth']
