"""The benchmark tools run on tiny inputs and print their tables."""
import sys

from conftest import REPO

sys.path.insert(0, str(REPO / 'tools' / 'analysis_tools'))
import benchmark_layers  # noqa: E402


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
