"""The FLOPs, model table and filter plot tools (``tools/analysis_tools/``,
run through their ``main(argv)`` in :mod:`mmspectral.cli`) on tiny inputs:
what they print and write, and the errors they name."""
import pytest
import torch

from mmspectral.cli import get_flops, model_table, visualize_filters
from conftest import REPO

GFNET_H_TI = str(REPO / 'configs/gfnet/gfnet-h-ti_8xb128_in1k.py')


def test_get_flops_classifier_and_detector(capsys):
    assert get_flops.main([GFNET_H_TI, '--shape', '64', '--by-module',
                           '1']) == 0
    printed = capsys.readouterr().out
    assert 'ImageClassifier at 64x64' in printed and 'backbone' in printed
    detector = str(REPO / 'configs/gfnet/mask-rcnn_gfnet-h-ti_fpn_1x_coco.py')
    assert get_flops.main([detector, '--shape', '96', '128']) == 0
    assert 'MaskRCNN at 96x128' in capsys.readouterr().out
    assert get_flops.main([detector, '--shape', '64', '--backbone-only']) == 0
    assert 'backbone at 64x64' in capsys.readouterr().out


def test_model_table_puts_published_numbers_beside_ours(capsys, tmp_path):
    out = tmp_path / 'table.md'
    assert model_table.main(
        ['--only', 'gfnet-s', 'convnext-t (peer)', '--out', str(out)]) == 0
    rows = {
        line.split('|')[1].strip(): line
        for line in capsys.readouterr().out.splitlines() if '|' in line
    }
    # GFNet-S: 24.87M / 4.49G against the published 25M / 4.5G
    assert '| 25 ' in rows['gfnet-s'] and '(match)' in rows['gfnet-s']
    assert '28.59' in rows['convnext-t (peer)']
    assert out.read_text().count('\n| ') >= 3
    with pytest.raises(SystemExit, match='unknown'):
        model_table.main(['--only', 'resnet-50'])


def test_compare_rounds_to_the_published_precision():
    assert model_table.compare(7.51, '7') == '+7.3%'
    assert model_table.compare(15.09, '15') == '+0.6% (match)'
    assert model_table.compare(3.941, '3.90') == '+1.1%'
    assert model_table.compare(1.0, None) == '–'


def test_visualize_filters_from_config_and_checkpoint(tmp_path, capsys):
    assert visualize_filters.main([GFNET_H_TI, '--out', str(tmp_path / 'a'),
                                   '--layers', '*stages.3.*']) == 0
    assert (tmp_path / 'a/spectra.png').stat().st_size > 1000
    assert (tmp_path / 'a/kernels.png').stat().st_size > 1000
    assert len(list((tmp_path / 'a/layers').glob('*.png'))) == 3
    # a bare state dict with filters in the official (h, w, C, 2) layout
    ckpt = tmp_path / 'gf.pth'
    torch.save({'model': {'blocks.0.filter.complex_weight':
                          torch.randn(14, 8, 4, 2)}}, ckpt)
    assert visualize_filters.main([str(ckpt), '--out',
                                   str(tmp_path / 'b')]) == 0
    assert 'blocks.0.filter.png' in [
        p.name for p in (tmp_path / 'b/layers').iterdir()
    ]


def test_spectrum_of_an_identity_filter_is_flat_and_its_kernel_a_delta():
    weight = torch.zeros(8, 5, 2, 2)
    weight[..., 0] = 1.0  # all-pass: 1 + 0j at every frequency
    spectrum, kernel = visualize_filters.spectrum_and_kernel(weight)
    assert torch.allclose(spectrum, torch.zeros_like(spectrum), atol=1e-6)
    centre = kernel[:, 4, 4]
    assert torch.allclose(centre, torch.ones_like(centre))
    assert kernel.abs().sum() == pytest.approx(centre.abs().sum())


def test_visualize_filters_errors_name_the_problem(tmp_path):
    afno = str(REPO / 'configs/afno/afno-ti_8xb128_in1k.py')
    with pytest.raises(SystemExit, match='error: no global filters'):
        visualize_filters.main([afno, '--out', str(tmp_path / 'a')])
    with pytest.raises(SystemExit, match='error: missing.pth not found'):
        visualize_filters.main(['missing.pth', '--out', str(tmp_path / 'b')])
    (tmp_path / 'kept').mkdir()
    (tmp_path / 'kept' / 'spectra.png').write_bytes(b'earlier plot')
    with pytest.raises(SystemExit, match='is not empty'):
        visualize_filters.main([afno, '--out', str(tmp_path / 'kept')])
    assert (tmp_path / 'kept' / 'spectra.png').read_bytes() == \
        b'earlier plot'


def test_visualize_filters_reads_the_official_hornet_layout(tmp_path):
    weight = torch.randn(32, 14, 8, 2)  # (C, h, w, 2)
    ckpt = tmp_path / 'hornet.pth'
    torch.save({'stages.2.0.gnconv.dwconv.complex_weight': weight}, ckpt)
    filters = visualize_filters.filters_from_checkpoint(str(ckpt))
    assert torch.equal(filters['stages.2.0.gnconv.dwconv'],
                       weight.permute(1, 2, 0, 3))
