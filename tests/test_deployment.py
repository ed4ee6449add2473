"""ONNX deployment: the spectral lowerings, tiny models of every family and
head exported and checked against PyTorch in ONNX Runtime (and OpenVINO
when it is installed), and the two deployment tools."""
import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from deploy_cases import (HEADS, backbone_config, valid_region_config,
                          write_config)

from mmspectral.deploy import LoweringError, spectral_lowering
from mmspectral.models.layers import AFNO2d, GlobalFilter
from mmspectral.models.layers.spectral import standard_matrices
from conftest import REPO

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')

TOOLS = REPO / 'tools' / 'deployment'
# odd sizes: nothing is a power of two, mmdet pads 61x83 to 64x96
SHAPE = (61, 83)


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, TOOLS / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tool_error(tool, argv) -> str:
    with pytest.raises(SystemExit) as exc:
        tool.main(argv)
    return str(exc.value.code)


# -- the lowerings, in PyTorch --------------------------------------------


@pytest.mark.parametrize('lowering', ['matmul', 'dft'])
@pytest.mark.parametrize('channels_last', [True, False])
@pytest.mark.parametrize('size', [(13, 22), (8, 8), (7, 1), (1, 5)])
def test_global_filter_lowering_is_torch_fft(lowering, channels_last, size):
    layer = GlobalFilter(6, 7, channels_last=channels_last).eval()
    x = torch.randn(2, *size, 6) if channels_last else torch.randn(
        2, 6, *size)
    with torch.no_grad():
        expected = layer(x)
        with spectral_lowering(layer, lowering):
            lowered = layer(x)
    assert lowered.shape == expected.shape
    assert (lowered - expected).abs().max() < 1e-6


@pytest.mark.parametrize('lowering', ['matmul', 'dft'])
@pytest.mark.parametrize('fraction', [1.0, 0.5, 0.25])
@pytest.mark.parametrize('size', [(13, 22), (8, 8), (3, 1)])
def test_afno_lowering_is_torch_fft(lowering, fraction, size):
    layer = AFNO2d(8, 2, sparsity_threshold=0.05,
                   hard_thresholding_fraction=fraction).eval()
    for p in layer.parameters():  # outputs well away from zero
        p.data.normal_(0, 0.5)
    x = torch.randn(2, *size, 8)
    with torch.no_grad():
        expected = layer(x)
        with spectral_lowering(layer, lowering):
            lowered = layer(x)
    spectral = expected - x
    assert spectral.abs().max() > 0.1
    assert (lowered - expected).abs().max() < 1e-5 * spectral.abs().max()


def test_dft_matrices_match_torch_fft():
    n = 9
    eye = torch.eye(n, dtype=torch.float64)
    # the matmul lowering's matrices: W real -> half spectrum (parts real
    # then imaginary), H complex (parts interleaved)
    mats = standard_matrices((n, n), (0, 3, 8), 4, torch.float64,
                             torch.device('cpu'))
    half = mats['w'].view(2, 4, n)
    spectrum = torch.fft.rfft(eye, dim=0, norm='ortho')[:4]
    assert torch.allclose(half[0], spectrum.real, atol=1e-7)
    assert torch.allclose(half[1], spectrum.imag, atol=1e-7)
    full = mats['h'].view(3, 2, n, 2)[:, :, :, 0]  # on real inputs
    spectrum = torch.fft.fft(eye, dim=0, norm='ortho')[[0, 3, 8]]
    assert torch.allclose(full[:, 0], spectrum.real, atol=1e-7)
    assert torch.allclose(full[:, 1], spectrum.imag, atol=1e-7)
    mats = standard_matrices((n, n), None, None, torch.float64,
                             torch.device('cpu'))
    # the complex inverse undoes the DFT, the half-spectrum inverse rebuilds
    # a real signal from its columns
    assert torch.allclose(mats['h_inv'] @ mats['h'],
                          torch.eye(2 * n, dtype=torch.float64), atol=1e-6)
    x = torch.randn(n, dtype=torch.float64)
    rebuilt = mats['w_inv'] @ (mats['w'] @ x)
    assert torch.allclose(rebuilt, x, atol=1e-6)


def test_default_path_is_untouched():
    """No lowering in place: the layer is its torch.fft formula exactly."""
    layer = GlobalFilter(4, 5, impl='fft').eval()
    x = torch.randn(1, 6, 7, 4)
    with torch.no_grad():
        spectrum = torch.fft.rfft2(x, dim=(1, 2), norm='ortho')
        spectrum.mul_(layer.complex_filter((6, 7)))
        expected = torch.fft.irfft2(spectrum, s=(6, 7), dim=(1, 2),
                                    norm='ortho')
        assert torch.equal(layer(x), expected)
    with pytest.raises(RuntimeError):
        with spectral_lowering(layer, 'matmul'):
            raise RuntimeError('inside')
    assert layer.impl == 'fft'  # its own implementation is back
    with pytest.raises(ValueError, match='unknown spectral lowering'):
        with spectral_lowering(layer, 'fft'):
            pass


def test_tracing_without_prepared_constants_is_refused():
    layer = GlobalFilter(4, 5).eval()
    refused = pytest.raises(LoweringError, match='eager forward')
    with spectral_lowering(layer, 'matmul'), refused:
        torch.export.export(layer, (torch.randn(1, 6, 7, 4), ))


# -- exported layers -------------------------------------------------------


def _ops(path):
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def _run(path, *inputs):
    from mmspectral.deploy.runtime import Runtime
    return Runtime(str(path), 'onnxruntime', threads=2)(
        *[x.numpy() for x in inputs])


# the other pairs are exported in the models below
@pytest.mark.parametrize('layer_name,lowering', [('global_filter', 'matmul'),
                                                 ('afno', 'dft')])
def test_exported_layer(layer_name, lowering, tmp_path):
    from mmspectral.deploy.export import export_onnx, read_metadata
    from mmspectral.deploy.onnx_ops import OPSETS
    if layer_name == 'afno':
        layer = AFNO2d(8, 2, hard_thresholding_fraction=0.5).eval()
    else:
        layer = GlobalFilter(8, 7, channels_last=True).eval()
    x = torch.randn(2, 13, 22, 8)
    path = tmp_path / 'layer.onnx'
    export_onnx(layer, (x, ), str(path), lowering, dynamic_batch=True,
                metadata=dict(task='layer'))
    with torch.no_grad():
        expected = layer(x)
    out, = _run(path, x)
    assert np.abs(out - expected.numpy()).max() < 1e-5
    out, = _run(path, x[:1])  # dynamic batch
    assert np.abs(out - expected[:1].numpy()).max() < 1e-5
    ops = _ops(path)
    assert ('DFT' in ops) == (lowering == 'dft')
    assert lowering == 'dft' or 'MatMul' in ops
    assert read_metadata(path) == dict(task='layer', lowering=lowering,
                                       opset=OPSETS[lowering],
                                       dynamic_batch=True)
    opsets = {o.domain: o.version for o in onnx.load(str(path)).opset_import}
    assert opsets[''] == OPSETS[lowering]
    with pytest.raises(FileExistsError):
        export_onnx(layer, (x, ), str(path), lowering)


# -- tiny models of every family and head ------------------------------------


def _export_case(config, path, backbone_only=False, lowering='matmul',
                 dynamic=False):
    from mmspectral.deploy.build import (example_inputs, export_config,
                                         load_model, model_task, network_shape)
    from mmspectral.deploy.parity import make_decisive
    from mmspectral.cli import load_config
    cfg = load_config(str(config))
    model = load_model(cfg)
    task = 'backbone' if backbone_only else model_task(cfg, model)
    inputs = example_inputs(task, network_shape(cfg, SHAPE), 1, SHAPE)
    make_decisive(model, task, inputs)
    meta = export_config(cfg, str(path), SHAPE, lowering=lowering,
                         dynamic_batch=dynamic, backbone_only=backbone_only,
                         model=model)
    return model, meta, inputs


def _parity(model, meta, inputs, path):
    from mmspectral.deploy.parity import compare, deployed, reference
    outputs = _run(path, *inputs)
    return compare(meta['task'], reference(model, meta['task'], inputs),
                   deployed(outputs, meta, inputs))


def assert_parity(task, figures):
    if task in ('retinanet', 'mask_rcnn'):
        assert figures['ref'] > 10, figures  # something to compare
        # at most 1% may differ: detections tied at the top-k / NMS cut,
        # decided by the last bits of the arithmetic (which vary by CPU)
        assert figures['matched'] >= 0.99 * figures['ref'], figures
        assert abs(figures['deployed'] - figures['ref']) <= \
            0.01 * figures['ref'], figures
        assert figures['min_box_iou'] > 0.99, figures
        assert figures['max_score_diff'] < 1e-4, figures
        if task == 'mask_rcnn':
            assert figures['mask_iou'] > 0.99, figures
        return
    assert figures['max_abs_diff'] <= 1e-4, figures
    if 'argmax_agreement' in figures:
        assert figures['argmax_agreement'] == 1.0, figures


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """``exported(head)``: the tiny model of ``head`` exported (once per
    module) and its path, model, metadata and inputs."""
    folder = tmp_path_factory.mktemp('models')
    done = {}

    def export(head):
        if head not in done:
            path = folder / f'{head}.onnx'
            done[head] = (path, ) + _export_case(
                write_config(folder, head), path, dynamic=True)
        return done[head]

    return export


@pytest.mark.parametrize('head', list(HEADS))
def test_exported_model_matches_pytorch(head, exported):
    path, model, meta, inputs = exported(head)
    assert meta['task'] == head.split('-')[0]
    assert meta['backbone'] == HEADS[head][0]
    assert meta['input_shape'] == (
        [64, 96] if meta['task'] in ('retinanet', 'mask_rcnn') else
        list(SHAPE))
    if meta['task'] != 'segmentor':
        assert 'DFT' not in _ops(path)
    assert_parity(meta['task'], _parity(model, meta, inputs, path))
    # a batch of three, each image with its own valid area
    batch = [torch.cat([inputs[0], inputs[0].flip(-1), inputs[0].flip(-2)])]
    if len(inputs) > 1:
        batch.append(torch.tensor([list(SHAPE), [64, 96], [50, 70]],
                                  dtype=torch.float32))
    figures = _parity(model, meta, batch, path)
    assert_parity(meta['task'], figures)
    if 'ref' in figures:
        assert figures['ref'] == 300  # 100 per image


def test_exported_backbone_dft_lowering_dynamic_batch(tmp_path):
    path = tmp_path / 'backbone.onnx'
    model, meta, inputs = _export_case(
        backbone_config(tmp_path, 'GFNetH'), path, backbone_only=True,
        lowering='dft', dynamic=True)
    assert meta['task'] == 'backbone' and meta['lowering'] == 'dft'
    assert 'DFT' in _ops(path)
    assert_parity('backbone', _parity(model, meta, inputs, path))
    batch = torch.cat([inputs[0], inputs[0].flip(-1), -inputs[0]])
    with torch.no_grad():
        expected = model.backbone(batch)
    for out, ref in zip(_run(path, batch), expected):
        assert np.abs(out - ref.numpy()).max() <= 1e-4


def _image_in(image, shape, fill):
    """``image`` in the top-left of a batch of ``shape`` holding ``fill``."""
    batch = fill(image.shape[:2] + tuple(shape))
    batch[..., :image.shape[-2], :image.shape[-1]] = image
    return batch


def test_export_fixes_the_valid_region(tmp_path):
    """With valid_region=True the graph computes the image over its own
    region: the backbone's output is what PyTorch gives with the padding
    marked, whatever the graph's padding holds."""
    import copy

    from mmspectral.cli import load_config
    from mmspectral.deploy.build import export_config, load_model
    from mmspectral.models.backbones.base import PAD_MARK
    cfg = load_config(str(valid_region_config(tmp_path, 'retinanet')))
    model = load_model(cfg)
    pytorch = copy.deepcopy(model.backbone)
    path = tmp_path / 'backbone.onnx'
    meta = export_config(cfg, str(path), SHAPE, backbone_only=True,
                         model=model)
    assert meta['input_shape'] == [64, 96] and meta['pad_value'] == 0
    image = torch.randn((1, 3) + SHAPE)
    with torch.no_grad():
        expected = pytorch(_image_in(
            image, (64, 96), lambda s: torch.full(s, PAD_MARK)))
    for fill in (torch.zeros, lambda s: 5 * torch.randn(s)):
        outputs = _run(path, _image_in(image, (64, 96), fill))
        for out, ref in zip(outputs, expected):
            assert out.shape == tuple(ref.shape)
            assert np.abs(out - ref.numpy()).max() <= 1e-4


def test_fixed_region_keeps_the_simple_fpn_region(tmp_path):
    """An isotropic backbone's SimpleFPN runs on the fixed region too: the
    detector's features match PyTorch's with the padding marked."""
    import copy

    from mmspectral.cli import load_config
    from mmspectral.deploy.build import load_model
    from mmspectral.deploy.valid_region import (ImageRegionFeatures,
                                                fix_valid_region)
    from mmspectral.models.backbones.base import PAD_MARK
    cfg = load_config(str(valid_region_config(tmp_path,
                                              'mask_rcnn-simple-fpn')))
    model = load_model(cfg)
    pytorch = copy.deepcopy(model)
    fix_valid_region(model, SHAPE, (64, 96))
    assert isinstance(model.backbone, ImageRegionFeatures)
    assert model.backbone.neck is not None and len(model.neck) == 1
    assert not any(getattr(m, 'valid_region', False) for m in model.modules())
    image = torch.randn((1, 3) + SHAPE)
    with torch.no_grad():
        expected = pytorch.extract_feat(_image_in(
            image, (64, 96), lambda s: torch.full(s, PAD_MARK)))
        fixed = model.extract_feat(_image_in(
            image, (64, 96), lambda s: 5 * torch.randn(s)))
    for out, ref in zip(fixed, expected):
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_openvino_runs_the_exported_model(exported):
    pytest.importorskip('openvino')
    from mmspectral.deploy.parity import compare, deployed, reference
    from mmspectral.deploy.runtime import Runtime
    path, model, meta, inputs = exported('mask_rcnn')
    outputs = Runtime(str(path), 'openvino', threads=2)(
        *[x.numpy() for x in inputs])
    figures = compare(meta['task'], reference(model, meta['task'], inputs),
                      deployed(outputs, meta, inputs))
    assert_parity('mask_rcnn', figures)


# -- the tools ---------------------------------------------------------------


@pytest.fixture(scope='module')
def exported_segmentor(tmp_path_factory):
    """tools/deployment/pytorch2onnx.py run as a user runs it."""
    folder = tmp_path_factory.mktemp('export')
    config = write_config(folder, 'segmentor')
    out = folder / 'seg.onnx'
    proc = subprocess.run(
        [sys.executable, str(TOOLS / 'pytorch2onnx.py'), str(config),
         '--shape', *map(str, SHAPE), '--out', str(out), '--verify'],
        capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return config, out, proc.stdout


def test_export_tool(exported_segmentor):
    config, out, stdout = exported_segmentor
    assert 'segmentor of AFNOMiT, input 61x83' in stdout
    assert 'spectral layers as matmul' in stdout
    verified = stdout.split('--verify (onnxruntime): ')[1]
    figures = dict(item.split() for item in verified.strip().split(', '))
    assert float(figures['max_abs_diff']) <= 1e-4
    assert float(figures['argmax_agreement']) == 1.0


def test_export_tool_errors(exported_segmentor, tmp_path):
    config, out, _ = exported_segmentor
    tool = load_tool('pytorch2onnx')
    before = out.read_bytes()
    message = tool_error(tool, [str(config), '--shape', '64', '64',
                                '--out', str(out)])
    assert 'exists' in message and out.read_bytes() == before
    message = tool_error(tool, [str(config), '--shape', '0', '64', '--out',
                                str(tmp_path / 'a.onnx')])
    assert '--shape' in message
    message = tool_error(tool, [str(config), str(tmp_path / 'none.pth'),
                                '--shape', '64', '64', '--out',
                                str(tmp_path / 'b.onnx')])
    assert 'not found' in message
    message = tool_error(tool, [
        str(REPO / 'configs' / 'hornet' / 'cascade-mask-rcnn_hornet-t-gf_'
            'fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py'), '--shape', '64',
        '64', '--out', str(tmp_path / 'c.onnx')])
    assert 'CascadeRoIHead' in message and 'StandardRoIHead' in message
    assert not list(tmp_path.glob('*.onnx'))


def test_inference_tool(exported_segmentor, tmp_path):
    import cv2
    _, model, _ = exported_segmentor
    images = tmp_path / 'images'
    images.mkdir()
    rng = np.random.default_rng(0)
    for name, size in (('a.png', (40, 90)), ('b.jpg', (120, 70))):
        image = cv2.resize(rng.integers(0, 255, (6, 6, 3), np.uint8),
                           size[::-1])
        cv2.imwrite(str(images / name), image)
    (images / 'notes.txt').write_text('not an image')
    out = tmp_path / 'out'
    tool = load_tool('onnx_inference')
    assert tool.main([str(model), str(images), '--out-dir', str(out)]) == 0
    drawn = cv2.imread(str(out / 'b.jpg'))
    assert drawn.shape == (120, 70, 3)
    predictions = json.loads((out / 'predictions.json').read_text())
    assert sorted(predictions) == ['a.png', 'b.jpg']
    assert predictions['a.png']['labels']
    message = tool_error(tool, [str(model), str(images), '--out-dir',
                                str(out)])
    assert 'not empty' in message
    message = tool_error(tool, [str(model), str(tmp_path / 'none'),
                                '--out-dir', str(tmp_path / 'o2')])
    assert 'neither an image nor a folder' in message


@pytest.mark.parametrize('head', ['mask_rcnn', 'retinanet', 'classifier'])
def test_inference_tool_other_heads(head, exported, tmp_path):
    import cv2

    from mmspectral.deploy.parity import photo_like_image
    path = exported(head)[0]
    image = photo_like_image(90, 130)
    cv2.imwrite(str(tmp_path / 'photo.png'), image)
    out = tmp_path / 'out'
    tool = load_tool('onnx_inference')
    assert tool.main([str(path), str(tmp_path / 'photo.png'), '--out-dir',
                      str(out), '--score-thr', '0.05']) == 0
    assert cv2.imread(str(out / 'photo.png')).shape == image.shape
    record = json.loads((out / 'predictions.json').read_text())['photo.png']
    if head == 'classifier':
        assert len(record['top5']) == 5
        assert record['top5'][0]['name'] in 'abcdefg'
        return
    detections = record['detections']
    assert detections and all(d['score'] > 0.05 for d in detections)
    for d in detections:  # in original-image pixels
        x1, y1, x2, y2 = d['bbox']
        assert 0 <= x1 <= x2 <= 130 and 0 <= y1 <= y2 <= 90
