"""The benchmark tools run on tiny inputs and print what they promise (the
FLOPs, model table and filter plots: tests/test_tools_analysis.py)."""
import csv

import pytest
import torch

from mmspectral.cli import (benchmark, benchmark_layers, benchmark_padding,
                            compare_official, gpu_check)


def test_benchmark_layers_prints_a_table(capsys, tmp_path):
    out = tmp_path / 'table.md'
    assert benchmark_layers.main([
        '--sizes', '9x13x16', '16x16x8', '--fractions', '1', '0.5',
        '--repeat', '1', '--warmup', '0', '--backward', '--out', str(out)
    ]) == 0
    printed = capsys.readouterr().out
    assert 'forward + backward' in printed
    assert '| 9x13x16' in printed and 'AFNO speed-up f=0.5' in printed
    assert out.read_text().strip() == printed.strip()


def test_benchmark_layers_engine_table(capsys):
    """Every engine form per precision, what auto picks, and the errors:
    float32 at float32 rounding, bf16 at bf16's."""
    assert benchmark_layers.main(['--sizes', '40x48x32', '--fractions', '1',
                                  '--repeat', '1', '--warmup', '0']) == 0
    printed = capsys.readouterr().out
    assert 'avx512_bf16' in printed and 'torch ' in printed
    rows = [[c.strip() for c in line.split('|')[1:-1]]
            for line in printed.split('Spectral engine')[1].splitlines()
            if line.startswith('| 40x48x32')]
    assert [r[1] for r in rows] == ['float32', 'bfloat16']
    for row in rows:
        assert row[6] in ('fft', 'dft', 'factored')
        bound = 1e-5 if row[1] == 'float32' else 3e-2
        assert all(float(e) < bound for e in row[-3:]), row


@pytest.mark.parametrize('mode', ['test', 'train'])
def test_benchmark_padding_shows_what_valid_region_buys(mode, capsys):
    assert benchmark_padding.main(['--models', 'gfnet-h-ti', 'afno-ti',
                                   '--sizes', '64x96', '80x72', '--repeat',
                                   '1', '--warmup', '0', '--mode', mode]) == 0
    printed = capsys.readouterr().out
    assert ('forward + backward' in printed) == (mode == 'train')
    rows = [[c.strip() for c in line.split('|')[1:-1]]
            for line in printed.splitlines()
            if line.startswith('| gfnet') or line.startswith('| afno')]
    assert len(rows) == 2
    for row in rows:
        assert float(row[4]) > 1e-3 and float(row[5]) < 1e-5, row


def test_benchmark_layers_compares_with_the_naive_core(capsys):
    assert benchmark_layers.main([
        '--sizes', '12x20x8:7', '--fractions', '1', '--repeat', '1',
        '--warmup', '0', '--backbone', 'gfnet-h-ti', '--image', '45x67', '32',
        '--profile'
    ]) == 0
    printed = capsys.readouterr().out
    row = next(line for line in printed.splitlines() if '| 12x20x8' in line)
    cells = [cell.strip() for cell in row.split('|')[1:-1]]
    assert cells[1] == '7x7' and cells[4].endswith('x')
    assert float(cells[5]) <= 1e-5  # same outputs as the naive layer
    backbones = [[cell.strip() for cell in line.split('|')[1:-1]]
                 for line in printed.splitlines()
                 if line.startswith('| gfnet-h-ti')]
    assert [cells[1] for cells in backbones] == ['45x67', '32x32']
    for cells in backbones:
        # identical outputs: the max |diff| column is (close to) zero
        assert float(cells[7]) <= 1e-5
    profiles = printed.split('Top operators of gfnet-h-ti at ')[1:]
    assert [p.split('\n')[0] for p in profiles] == ['45x67', '32x32']
    assert all('aten::_fft_r2c' in p for p in profiles)


def test_backbone_table_columns(capsys, monkeypatch):
    """What each column of the backbone table is: with the timer faked to
    0.3 s (naive), 0.2 s (ours) and 0.1 s (no filter), the speed-up is 1.5x
    and the bound 3x."""
    monkeypatch.setattr(benchmark_layers, 'median_times',
                        lambda fns, *args: [0.3, 0.2, 0.1][:len(fns)])
    assert benchmark_layers.main(['--sizes', '--backbone', 'gfnet-h-ti',
                                  '--image', '32']) == 0
    row = next(line for line in capsys.readouterr().out.splitlines()
               if line.startswith('| gfnet-h-ti'))
    cells = [cell.strip() for cell in row.split('|')[1:-1]]
    assert cells[2:7] == ['300.0', '200.0', '100.0', '1.50x', '3.00x']


def test_benchmark_layers_rejects_a_bad_image_size(capsys):
    with pytest.raises(SystemExit):
        benchmark_layers.main(['--backbone', 'gfnet-h-ti', '--image', '4x'])
    assert "image size '4x' is not S or HxW" in capsys.readouterr().err


def test_filterless_copy_removes_every_filter():
    from mmspectral.models.backbones import GFNetH
    model = GFNetH('h-ti').eval()
    free = benchmark_layers.filterless_copy(model)
    assert not any(isinstance(m, benchmark_layers.GlobalFilter)
                   for m in free.modules())
    assert any(isinstance(m, benchmark_layers.GlobalFilter)
               for m in model.modules())  # the original is untouched


def test_naive_copy_swaps_every_filter_and_keeps_the_weights():
    from mmspectral.models.backbones import HorNet
    model = HorNet('t-gf').eval()
    naive = benchmark_layers.naive_copy(model)
    assert not any(
        isinstance(m, benchmark_layers.GlobalFilter) for m in naive.modules())
    x = torch.randn(1, 3, 70, 50)
    assert benchmark_layers.max_difference(model, naive, x) <= 1e-5


def test_benchmark_writes_tables_csv_and_plot(capsys, tmp_path):
    assert benchmark.main([
        '--models', 'gfnet-h-ti', 'convnext-t (mmpretrain)', '--sizes', '32',
        '48x64', '--repeat', '1', '--warmup', '0', '--out-dir',
        str(tmp_path)
    ]) == 0
    printed = capsys.readouterr().out
    assert 'Latency (ms)' in printed and 'Peak memory (MiB)' in printed
    assert '| convnext-t (mmpretrain)' in printed
    with open(tmp_path / 'benchmark.csv') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and all(float(r['latency_ms']) > 0 for r in rows)
    assert (tmp_path / 'benchmark.png').stat().st_size > 1000
    assert benchmark.fit_exponent([1, 10, 100], [2, 20, 200]) == \
        pytest.approx(1.0)


def test_benchmark_sets_each_of_ours_against_each_peer():
    args = benchmark.parse_args([
        '--models', 'gfnet-h-s', 'hornet-t-gf', 'swin-t (mmdet)',
        '--sizes', '512', '1024', '--compile'])
    results = {
        'gfnet-h-s': {(512, 512): (0.5, 0), (1024, 1024): (2.0, 0)},
        'gfnet-h-s compiled': {(512, 512): (0.25, 0), (1024, 1024): (1., 0)},
        'hornet-t-gf': {(512, 512): (0.4, 0),
                        (1024, 1024): (float('nan'), 0)},
        'hornet-t-gf compiled': {(512, 512): (0.4, 0), (1024, 1024): (1., 0)},
        'swin-t (mmdet)': {(512, 512): (0.6, 0), (1024, 1024): (3.0, 0)},
        'swin-t (mmdet) compiled': {(512, 512): (0.3, 0),
                                    (1024, 1024): (0.5, 0)},
    }
    assert benchmark.peer_ratios(results, args) == [
        ['gfnet-h-s vs swin-t (mmdet)', '1.20x', '1.50x'],
        ['gfnet-h-s compiled vs swin-t (mmdet) compiled', '1.20x', '0.50x'],
        ['hornet-t-gf vs swin-t (mmdet)', '1.50x', 'failed'],
        ['hornet-t-gf compiled vs swin-t (mmdet) compiled', '0.75x', '0.50x'],
    ]
    assert 'ours vs peer' in benchmark.tables(results, args)


def test_compare_official_needs_the_official_checkout(tmp_path):
    with pytest.raises(SystemExit, match='gfnet.py does not exist'):
        compare_official.main(['--official-repo', str(tmp_path)])
    (tmp_path / 'gfnet.py').write_text('import timm_missing_here\n')
    with pytest.raises(SystemExit, match='pip install timm'):
        compare_official.main(['--official-repo', str(tmp_path)])


def test_compare_official_report():
    args = compare_official.parse_args(['--official-repo', '.', '--sizes',
                                        '512', '--repeat', '2'])
    text = compare_official.report([(512, 0.9, 0.6, 2e-7)], args)
    assert '| 512x512 | 900.0         | 600.0           | 1.50x ' in text
    assert '2.0e-07' in text and 'float32; median of 2' in text


def test_benchmark_rejects_unknown_models():
    with pytest.raises(SystemExit):
        benchmark.main(['--models', 'resnet-50'])


def test_median_times_lets_the_functions_take_turns(monkeypatch):
    """The functions alternate, and each one's median is of its own runs
    (a fake clock: run k of 'a' takes (1, 3, 2)[k] s, of 'b' 10 times
    that)."""
    from mmspectral.utils import benchmarking
    clock = [0.0]
    monkeypatch.setattr(benchmarking.time, 'perf_counter', lambda: clock[0])
    calls = []

    def run(name, durations):
        def fn():
            calls.append(name)
            clock[0] += durations[(len(calls) - 1) // 2 - 1]
        return fn

    times = benchmarking.median_times(
        [run('a', (1, 3, 2)), run('b', (10, 30, 20))], warmup=1, repeat=3)
    assert calls == ['a', 'b'] * 4
    assert times == [2, 20]


def test_gpu_check_runs_every_section_on_a_cpu(tmp_path):
    """The GPU check is prepared for a CUDA machine; here its sections run
    on the CPU with tiny models, so a GPU session can run it unchanged."""
    out = tmp_path / 'gpu_check.md'
    assert gpu_check.main(['--device', 'cpu', '--quick', '--out',
                           str(out)]) == 0
    report = out.read_text()
    for section in ('## amp', '## plans', '## filter-cache', '## speed',
                    '## amp-step', '## engines'):
        assert section in report
    amp_report = report.split('## plans')[0]
    amp_rows = [line for line in amp_report.splitlines()
                if line.startswith('| ') and ('float16' in line
                                              or 'bfloat16' in line)]
    assert len(amp_rows) == 2 * len(gpu_check.FAMILIES)
    # engines: 2 maps x 3 dtypes x (forward, forward + backward), each
    # implementation within its precision of float32 fft
    engine_rows = [[c.strip() for c in line.split('|')[1:-1]]
                   for line in report.split('## engines')[1].splitlines()
                   if line.startswith('| ') and 'x16 ' in line]
    assert len(engine_rows) == 12
    for row in engine_rows:
        bound = 1e-5 if row[1] == 'float32' else 3e-2
        assert all(float(e) < bound for e in row[-3:]), row
    assert all(line.rstrip(' |').endswith('yes') for line in amp_rows)
    # the bound keeps 2 sizes: cached bytes stop growing, unbounded do not
    cache_rows = [[c.strip() for c in line.split('|')[1:-1]]
                  for line in report.split('## filter-cache')[1].split(
                      '## speed')[0].splitlines() if line.startswith('| 2 ')
                  or line.startswith('| 6 ')]
    bounded = [float(r[2]) for r in cache_rows if r[0] == '2']
    unbounded = [float(r[2]) for r in cache_rows if r[0] == '6']
    assert bounded[-1] < unbounded[-1]
    assert "AmpOptimWrapper needs CUDA" in report


def test_gpu_check_refuses_cuda_without_a_gpu(capsys):
    if torch.cuda.is_available():
        pytest.skip('a GPU is present')
    with pytest.raises(SystemExit):
        gpu_check.main(['--device', 'cuda'])
    assert 'no CUDA device here' in capsys.readouterr().err
