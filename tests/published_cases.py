"""The published dense settings (HorNet Cascade Mask R-CNN 3x and UperNet
160k, GFNet-H Semantic FPN) shrunk to a few channels for the tests, and the
official dense checkpoints built in their exact key layout (a helper, not a
test module)."""
from typing import Dict

import torch
from mmengine.config import Config

from conftest import REPO

HORNET = sorted((REPO / 'configs' / 'hornet').glob('cascade-mask-rcnn_*')) + \
    sorted((REPO / 'configs' / 'hornet').glob('upernet_*'))
GFNET_FPN = sorted((REPO / 'configs' / 'gfnet').glob('fpn_gfnet-*'))
PUBLISHED = HORNET + GFNET_FPN
WIDTH = 16  # channels of the shrunk heads


def small_hornet_arch(arch: str) -> dict:
    """A HorNet of a few channels with the GF stages of ``arch``."""
    gf = (2, 3) if arch.endswith('-gf') else ()
    return dict(base_dim=8, depths=[1, 1, 2, 1], orders=[2, 3, 4, 5],
                global_filter_stages=gf)


def shrink(cfg: Config) -> Config:
    """``cfg`` with a backbone and heads of a few channels; everything
    else (the heads' kinds, the filters' stored size, the schedule) as
    published."""
    model = cfg.model
    backbone = model.backbone
    if backbone.type == 'mmspectral.HorNet':
        backbone.arch = small_hornet_arch(backbone.arch)
        channels = [8, 16, 32, 64]
    else:  # GFNetH
        backbone.arch = dict(embed_dims=[8, 16, 24, 32], depths=[1, 1, 1, 1],
                             mlp_ratio=2, layer_scale_init_value=1e-2)
        channels = [8, 16, 24, 32]
    if 'neck' in model:
        model.neck.update(in_channels=channels, out_channels=WIDTH)
    if 'rpn_head' in model:
        model.rpn_head.update(in_channels=WIDTH, feat_channels=WIDTH)
        roi = model.roi_head
        roi.bbox_roi_extractor.out_channels = WIDTH
        roi.mask_roi_extractor.out_channels = WIDTH
        for head in roi.bbox_head:
            head.update(in_channels=WIDTH, conv_out_channels=WIDTH,
                        fc_out_channels=2 * WIDTH)
        roi.mask_head.update(in_channels=WIDTH, conv_out_channels=WIDTH)
    if 'decode_head' in model:
        decode = model.decode_head
        decode.update(channels=WIDTH, in_channels=[WIDTH] * 4 if 'neck' in
                      model else channels)
        if 'auxiliary_head' in model:
            model.auxiliary_head.update(in_channels=channels[2],
                                        channels=WIDTH)
    return cfg


def official_hornet_backbone(arch: dict, filter_size: int, device='cpu',
                             seed: int = 0) -> Dict[str, torch.Tensor]:
    """The backbone of an official HorNet detector / segmentor of ``arch``:
    the key names and shapes of ``HorNet`` in the official
    object_detection/models/hornet.py (= semantic_segmentation/models/
    hornet.py), prefixed ``backbone.``: LayerNorms with ``weight``/``bias``,
    ``gnconv.pws``, layer scales ``gamma1``/``gamma2`` as bare
    parameters, the GF filter ``dwconv.complex_weight`` of shape
    ``(C/2, h, w, 2)`` (stage 3: ``h = filter_size``, stage 4: half),
    output norms ``norm0..norm3``."""
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape):
        if device == 'meta':
            return torch.empty(*shape, device='meta')
        return torch.randn(*shape, generator=generator) * 0.2

    dims = [arch['base_dim'] * 2**i for i in range(4)]
    sd = {'downsample_layers.0.0.weight': rand(dims[0], 3, 4, 4),
          'downsample_layers.0.0.bias': rand(dims[0])}
    for name in ('downsample_layers.0.1', *(f'norm{i}' for i in range(4))):
        width = dims[int(name[-1])] if name.startswith('norm') else dims[0]
        sd[f'{name}.weight'], sd[f'{name}.bias'] = rand(width), rand(width)
    for i in range(1, 4):
        sd[f'downsample_layers.{i}.0.weight'] = rand(dims[i - 1])
        sd[f'downsample_layers.{i}.0.bias'] = rand(dims[i - 1])
        sd[f'downsample_layers.{i}.1.weight'] = rand(dims[i], dims[i - 1], 2,
                                                     2)
        sd[f'downsample_layers.{i}.1.bias'] = rand(dims[i])
    for s, (depth, order) in enumerate(zip(arch['depths'], arch['orders'])):
        c = dims[s]
        gates = [c // 2**k for k in range(order)][::-1]
        total = sum(gates)
        for j in range(depth):
            p = f'stages.{s}.{j}.'
            block = {
                'norm1.weight': rand(c), 'norm1.bias': rand(c),
                'gnconv.proj_in.weight': rand(2 * c, c, 1, 1),
                'gnconv.proj_in.bias': rand(2 * c),
                'gnconv.proj_out.weight': rand(c, c, 1, 1),
                'gnconv.proj_out.bias': rand(c),
                'norm2.weight': rand(c), 'norm2.bias': rand(c),
                'pwconv1.weight': rand(4 * c, c), 'pwconv1.bias': rand(4 * c),
                'pwconv2.weight': rand(c, 4 * c), 'pwconv2.bias': rand(c),
                'gamma1': rand(c), 'gamma2': rand(c),
            }
            for k in range(order - 1):
                block[f'gnconv.pws.{k}.weight'] = rand(gates[k + 1],
                                                       gates[k], 1, 1)
                block[f'gnconv.pws.{k}.bias'] = rand(gates[k + 1])
            if s in arch['global_filter_stages']:
                block.update({
                    'gnconv.dwconv.dw.weight': rand(total // 2, 1, 3, 3),
                    'gnconv.dwconv.complex_weight': rand(
                        total // 2, filter_size // 2**(s - 2),
                        filter_size // 2**(s - 2) // 2 + 1, 2),
                    'gnconv.dwconv.pre_norm.weight': rand(total),
                    'gnconv.dwconv.pre_norm.bias': rand(total),
                    'gnconv.dwconv.post_norm.weight': rand(total),
                    'gnconv.dwconv.post_norm.bias': rand(total),
                })
            else:
                block['gnconv.dwconv.weight'] = rand(total, 1, 7, 7)
                block['gnconv.dwconv.bias'] = rand(total)
            sd.update({p + k: v for k, v in block.items()})
    return {f'backbone.{k}': v for k, v in sd.items()}
