"""What a training run finds in its work dir is never lost (the unit
rules; tests/test_tools.py runs them through tools/train.py)."""
import json
import os
import subprocess
import sys

import pytest
import torch

from mmspectral.engine import (AtomicLocalBackend, WorkDirError, WorkDirLock,
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
