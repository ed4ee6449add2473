"""Helpers of the benchmark tools: interleaved timing, markdown tables,
reports, the options every timing tool takes, and a silencer for the
profiler's native log lines."""
import argparse
import contextlib
import os
import statistics
import sys
import time
from typing import Callable, List, Optional, Sequence

import torch


def relative_error(out: torch.Tensor, reference: torch.Tensor) -> float:
    """``|out - reference| / |reference|`` (L2, in float32)."""
    reference = reference.float()
    return ((out.float() - reference).norm() /
            reference.norm().clamp_min(1e-12)).item()


def add_timing_options(parser: argparse.ArgumentParser, repeat: int = 5,
                       warmup: int = 1, device: Optional[str] = 'cpu'):
    """``--repeat``, ``--warmup``, ``--threads`` and (unless ``device`` is
    None) ``--device``, with these defaults; see :func:`parse_timing_args`."""
    parser.add_argument('--repeat', type=int, default=repeat,
                        help='timed runs (the median is reported)')
    parser.add_argument('--warmup', type=int, default=warmup,
                        help='untimed runs first')
    parser.add_argument('--threads', type=int, help='torch CPU threads')
    if device is not None:
        parser.add_argument('--device', default=device)


def parse_timing_args(parser: argparse.ArgumentParser,
                      argv=None) -> argparse.Namespace:
    """Parse ``argv`` and apply ``--threads`` before anything is timed."""
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def median_times(fns: Sequence[Callable[[], object]],
                 warmup: int = 2,
                 repeat: int = 10,
                 device: str = 'cpu') -> List[float]:
    """Median wall time of each ``fn()`` in seconds over ``repeat`` runs after
    ``warmup`` runs. The functions take turns, so a machine that slows down
    or speeds up during the measurement affects them all alike; CUDA work is
    synchronised around each run."""
    sync = torch.cuda.synchronize if str(device).startswith('cuda') else (
        lambda: None)
    for _ in range(warmup):
        for fn in fns:
            fn()
    sync()
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, fn_times in zip(fns, times):
            start = time.perf_counter()
            fn()
            sync()
            fn_times.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def median_time(fn: Callable[[], object],
                warmup: int = 2,
                repeat: int = 10,
                device: str = 'cpu') -> float:
    """Median wall time of ``fn()``, see :func:`median_times`."""
    return median_times([fn], warmup, repeat, device)[0]


def format_table(header: Sequence[str], rows: List[Sequence]) -> str:
    """A markdown table."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        '| ' + ' | '.join(c.ljust(w) for c, w in zip(row, widths)) + ' |'
        for row in cells
    ]
    lines.insert(1, '|' + '|'.join('-' * (w + 2) for w in widths) + '|')
    return '\n'.join(lines)


def print_report(text: str, path: Optional[str] = None):
    """Print ``text`` and, if ``path`` is given, write it there too."""
    print(text)
    if path:
        with open(path, 'w') as f:
            f.write(text)


@contextlib.contextmanager
def native_stderr_silenced():
    """The profiler's C++ side logs start/stop lines to fd 2; hide them."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, 'w') as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


#: CPU flags that decide how fast bf16/fp16 matrix products can be
MATRIX_FLAGS = ('amx_bf16', 'amx_fp16', 'avx512_bf16', 'avx512_fp16')


def describe_machine(device: str = 'cpu') -> str:
    """The hardware and software a timing was made on: the CPU model and
    which of :data:`MATRIX_FLAGS` it has (from ``/proc/cpuinfo``), the GPU
    for a CUDA device, torch's version and its CPU threads."""
    model, flags = 'unknown CPU', set()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                key, _, value = line.partition(':')
                if key.strip() == 'model name':
                    model = value.strip()
                elif key.strip() == 'flags':
                    flags = set(value.split())
                    break
    except OSError:
        pass
    marks = ', '.join(f'{flag} {"yes" if flag in flags else "no"}'
                      for flag in MATRIX_FLAGS)
    text = (f'{model} ({marks}); torch {torch.__version__}, '
            f'{torch.get_num_threads()} CPU threads')
    if device.startswith('cuda') and torch.cuda.is_available():
        text += f'; GPU {torch.cuda.get_device_name(torch.device(device))}'
    return text
