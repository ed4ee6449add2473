"""Crafted checkpoints that torch's weights-only unpickler (with the
numpy and mmengine entries a naive allow-list adds) would load: each is
refused before anything in it is created, with a message naming what was
refused. The dangerous ones are read in a subprocess: on a reader that
lets them through they crash (exit 139), hang or allocate gigabytes."""
import argparse
import collections
import io
import os
import pickle
import socket
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

import mmspectral  # noqa: F401
from mmspectral.checkpoint import (CheckpointError, _refusal_reason,
                                   read_checkpoint)
from checkpoint_exploits import (Reduced, bytearray_bomb, device_mesh,
                                 frame_summary, numpy_array,
                                 overlapping_dtype_array, write_checkpoint)
from conftest import REFERENCE, REPO

# reads the checkpoint argv[1] after lowering the address-space limit to
# what the process uses now plus argv[2] MiB (0: no limit)
READ = r'''
import resource, sys
import mmspectral
from mmspectral.checkpoint import CheckpointError, read_checkpoint
headroom = int(sys.argv[2])
if headroom:
    with open('/proc/self/status') as f:
        used = [int(line.split()[1]) * 1024 for line in f
                if line.startswith('VmSize')][0]
    limit = used + headroom * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
    checkpoint = read_checkpoint(sys.argv[1])
    print('LOADED', type(checkpoint).__name__, flush=True)
    del checkpoint
except CheckpointError as err:
    print('REFUSED', err, flush=True)
'''


def read_in_subprocess(path, headroom_mib=0, env=None, timeout=120):
    return subprocess.run(
        [sys.executable, '-c', READ, str(path), str(headroom_mib)],
        capture_output=True, text=True, timeout=timeout, cwd=REPO,
        env=dict(os.environ, **(env or {})))


def assert_refused(proc, *needles):
    """The reader ended normally (no crash, exit 0) and refused the file,
    naming ``needles``."""
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-3000:])
    assert proc.stdout.startswith('REFUSED'), proc.stdout + proc.stderr
    for needle in needles:
        assert needle in proc.stdout, (needle, proc.stdout)
    assert 'weights_only' not in proc.stdout


# -- numpy dtypes -------------------------------------------------------------


def test_overlapping_object_dtype_is_refused_before_numpy_builds_it(
        tmp_path):
    """The structured dtype whose object field overlaps an integer field:
    a reader that admits numpy.dtype and its DType classes crashes (exit
    139) when the array is freed."""
    path = write_checkpoint(tmp_path / 'dtype.pth', overlapping_dtype_array())
    assert_refused(read_in_subprocess(path), 'numpy.dtype', 'V16')


def test_a_plain_dtype_given_a_structured_state_is_refused(tmp_path):
    """BUILD turns a plain ``f8`` into one with an object field."""
    dtype = Reduced(np.dtype, ('f8', False, True), (
        3, '<', None, ('a', ), {'a': (np.dtype('O'), 0)}, 8, 1, 63))
    path = write_checkpoint(tmp_path / 'state.pth',
                            numpy_array(dtype, [(0x41414141, )]))
    assert_refused(read_in_subprocess(path), 'numpy.dtype',
                   'state other than that of a plain number')


@pytest.mark.parametrize('typestr,data', [('O8', [0]), ('V8', b'\0' * 8),
                                          ('U1', b'\0' * 4),
                                          ('S8', b'\0' * 8),
                                          ('M8', b'\0' * 8)])
def test_arrays_of_other_than_plain_numbers_are_refused(
        tmp_path, typestr, data):
    path = write_checkpoint(
        tmp_path / 'array.pth',
        numpy_array(Reduced(np.dtype, (typestr, False, True)), data))
    with pytest.raises(CheckpointError,
                       match=f'was refused: .*numpy.dtype.*{typestr}'):
        read_checkpoint(str(path))


def test_array_data_of_another_size_than_its_shape_is_refused(tmp_path):
    dtype = Reduced(np.dtype, ('f8', False, True))
    path = write_checkpoint(tmp_path / 'short.pth',
                            numpy_array(dtype, b'\0' * 8, shape=(1000, )))
    with pytest.raises(CheckpointError, match='8 bytes of data for 1000'):
        read_checkpoint(str(path))


# -- what torch itself trusts beyond weights ---------------------------------


def test_bytearray_of_a_size_is_refused(tmp_path):
    """A few bytes of pickle would make 3 GiB; the reader runs with 1 GiB
    to spare."""
    path = write_checkpoint(tmp_path / 'bomb.pth', bytearray_bomb())
    assert_refused(read_in_subprocess(path, headroom_mib=1024),
                   'builtins.bytearray')


def test_frame_summary_reading_a_fifo_is_refused(tmp_path):
    """torch allows traceback.FrameSummary once torch.distributed is
    imported; it opens its file name to read a line: a FIFO without writer
    blocks the reader forever."""
    fifo = tmp_path / 'fifo'
    os.mkfifo(fifo)
    path = write_checkpoint(tmp_path / 'frame.pth', frame_summary(str(fifo)))
    assert_refused(read_in_subprocess(path, timeout=60),
                   'traceback.FrameSummary')


def test_device_mesh_is_refused(tmp_path):
    """torch allows DeviceMesh once torch.distributed is imported; creating
    it starts a process group that listens on MASTER_PORT."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    path = write_checkpoint(tmp_path / 'mesh.pth', device_mesh())
    env = dict(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK='0',
               WORLD_SIZE='1', LOCAL_RANK='0')
    assert_refused(read_in_subprocess(path, env=env, timeout=60),
                   'torch.distributed.device_mesh.DeviceMesh')


@pytest.mark.parametrize('zip_format', [True, False])
def test_a_call_of_os_system_names_the_global(tmp_path, zip_format):
    path = write_checkpoint(tmp_path / 'system.pth',
                            Reduced(os.system, ('true', )), zip_format)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(str(path))
    message = str(info.value)
    assert 'was refused' in message and 'posix.system' in message
    assert 'weights_only' not in message and 'safe_globals' not in message


def test_torchs_own_refusals_are_reworded_without_its_advice(tmp_path):
    """Where torch refuses first, the message names the global (torch 2.14:
    "Trying to load unsupported GLOBAL posix.system whose module posix is
    blocked") and leaves out "rerun with weights_only=False"."""
    path = write_checkpoint(tmp_path / 'system.pth',
                            Reduced(os.system, ('true', )))
    with pytest.raises(pickle.UnpicklingError) as blocked:
        torch.load(path, weights_only=True)
    assert 'weights_only' in str(blocked.value)  # torch's advice
    assert _refusal_reason(blocked.value) == 'unsupported global posix.system'
    path = write_checkpoint(tmp_path / 'counter.pth',
                            Reduced(collections.deque, ([], )))
    with pytest.raises(pickle.UnpicklingError) as unknown:
        torch.load(path, weights_only=True)
    assert _refusal_reason(unknown.value) == \
        'unsupported global collections.deque'


@pytest.mark.parametrize('payload,needle', [
    (Reduced(HistoryBuffer, ()), 'HistoryBuffer'),  # a REDUCE, not NEWOBJ
    (Reduced(getattr, (HistoryBuffer, '__init__')), 'builtins.getattr'),
    (Reduced(argparse.Namespace, ()), 'argparse.Namespace'),
    (Reduced(collections.OrderedDict, ([('a', 1)], )),
     'collections.OrderedDict'),
    (Reduced(torch._utils._rebuild_tensor_v2, (1, 2, 3, 4, 5, 6)),
     '_rebuild_tensor_v2'),
])
def test_allowed_globals_in_other_forms_are_refused(tmp_path, payload,
                                                    needle):
    path = write_checkpoint(tmp_path / 'form.pth', payload)
    with pytest.raises(CheckpointError, match=f'was refused: .*{needle}'):
        read_checkpoint(str(path))


def test_history_buffer_fields_are_its_own(tmp_path):
    """BUILD of a HistoryBuffer with another field (``__setstate__`` would
    plant it in the instance) is refused."""
    buffer = HistoryBuffer()
    buffer.__dict__['__setstate__'] = 1
    path = tmp_path / 'buffer.pth'
    torch.save({'message_hub': {'log_scalars': {'loss': buffer}}}, path)
    with pytest.raises(CheckpointError, match="the field '__setstate__'"):
        read_checkpoint(str(path))


# -- legitimate checkpoints still load ---------------------------------------


RNG_STATE = np.random.RandomState(0).get_state()


def mmengine_checkpoint():
    hub = MessageHub.get_instance('attacks-test')
    hub.update_scalar('train/loss', 0.5)
    hub.update_scalar('train/loss', np.float64(0.25))
    hub.update_info('iter', 3)
    weight = torch.arange(6.).view(2, 3)
    return {
        'meta': {
            'epoch': 1, 'iter': 3, 'seed': np.int64(7),
            'dataset_meta': {'classes': ('a', 'b')},
            'blob': b'\x00bytes', 'empty': b'', 'flags': {1, 2},
            'rng': RNG_STATE, 'unused_buffer': HistoryBuffer()
        },
        'state_dict': collections.OrderedDict(
            w=weight, row=weight[1], steps=torch.tensor(4),
            half=torch.ones(2, dtype=torch.float16)),
        'optimizer': {'state': {0: {'step': torch.tensor(3.)}},
                      'param_groups': [{'lr': 0.1, 'betas': (0.9, 0.99),
                                        'params': [0]}]},
        'param_schedulers': [{'milestones': collections.Counter([8, 11])}],
        'message_hub': hub.state_dict(),
        'args': argparse.Namespace(lr=0.1),
    }


@pytest.mark.parametrize('protocol', [2, 3, 4, 5])
@pytest.mark.parametrize('zip_format', [True, False])
def test_torch_save_files_of_every_protocol_load(tmp_path, protocol,
                                                 zip_format):
    """Protocols 3 to 5 use opcodes torch's weights-only unpickler lacks:
    once checked, their pickle is rewritten in protocol 2 for it."""
    path = tmp_path / 'ckpt.pth'
    torch.save(mmengine_checkpoint(), path, pickle_protocol=protocol,
               _use_new_zipfile_serialization=zip_format)
    loaded = read_checkpoint(str(path), safe_globals=[argparse.Namespace])
    state = loaded['state_dict']
    assert torch.equal(state['w'], torch.arange(6.).view(2, 3))
    assert state['row'].data_ptr() == state['w'][1].data_ptr()  # a view
    assert state['half'].dtype == torch.float16
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert buffer.mean() == pytest.approx(0.375)
    assert buffer.statistics('max') == 0.5
    assert loaded['meta']['seed'] == 7
    assert loaded['meta']['blob'] == b'\x00bytes'
    assert loaded['meta']['empty'] == b''
    assert len(loaded['meta']['unused_buffer']._log_history) == 0
    assert loaded['meta']['flags'] == {1, 2}
    assert np.array_equal(loaded['meta']['rng'][1], RNG_STATE[1])
    assert loaded['meta']['rng'][1].dtype == np.uint32
    assert loaded['param_schedulers'][0]['milestones'][11] == 1
    assert loaded['optimizer']['param_groups'][0]['betas'] == (0.9, 0.99)
    assert loaded['args'].lr == 0.1


@pytest.mark.parametrize('kind', ['meta', 'parameter', 'attributes'])
def test_tensor_forms_torch_save_writes_load(tmp_path, kind):
    tensor = torch.ones(3)
    value = {
        'meta': torch.empty(3, device='meta'),
        'parameter': torch.nn.Parameter(tensor),
        'attributes': tensor,
    }[kind]
    if kind == 'attributes':
        value.note = 'kept'
    path = tmp_path / 'ckpt.pth'
    torch.save({'state_dict': {'w': value}}, path)
    loaded = read_checkpoint(str(path))['state_dict']['w']
    assert loaded.shape == (3, )
    assert loaded.is_meta == (kind == 'meta')
    if kind == 'attributes':
        assert loaded.note == 'kept'


def reference_files():
    shared = REPO.parent / 'shared' / 'reference'
    return sorted(REFERENCE.glob('*.pth')) + (
        sorted(shared.glob('*.pth')) if shared.is_dir() else [])


def assert_same(value, expected):
    assert type(value) is type(expected)
    if isinstance(expected, torch.Tensor):
        assert torch.equal(value, expected)
    elif isinstance(expected, dict):
        assert list(value) == list(expected)
        for key in expected:
            assert_same(value[key], expected[key])
    elif isinstance(expected, (list, tuple)):
        assert len(value) == len(expected)
        for item, expected_item in zip(value, expected):
            assert_same(item, expected_item)
    else:
        assert value == expected


@pytest.mark.parametrize('path', reference_files(), ids=lambda p: p.name)
def test_reference_fixtures_load(path):
    assert_same(read_checkpoint(str(path)),
                torch.load(path, weights_only=True))


def test_a_torchscript_archive_is_not_read(tmp_path):
    path = tmp_path / 'scripted.pt'
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    with pytest.raises(CheckpointError, match='TorchScript archive'):
        read_checkpoint(str(path))


def test_a_storage_larger_than_the_archive_is_refused(tmp_path):
    """A persistent id that claims 4 GiB where the archive holds 16
    bytes."""
    buffer = io.BytesIO()
    torch.save({'w': torch.ones(4)}, buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    path = tmp_path / 'big.pth'
    with zipfile.ZipFile(path, 'w') as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith('/data.pkl'):
                # numel 4 (BININT1 4) -> 2**30 (BININT)
                data = data.replace(b'K\x04t', b'J\x00\x00\x00\x40t', 1)
                assert data != source.read(info)
            target.writestr(info, data)
    with pytest.raises(CheckpointError, match='claims 4294967296 bytes'):
        read_checkpoint(str(path))
