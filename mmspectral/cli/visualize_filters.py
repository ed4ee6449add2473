"""Plot the learned global filters: magnitude spectra and spatial kernels.

    python tools/analysis_tools/visualize_filters.py CONFIG_OR_CKPT \\
        --out DIR [--checkpoint CKPT] [--channels 8] [--layers PATTERN]

CONFIG_OR_CKPT is a config (its model is built; ``--checkpoint`` loads
weights into it) or a checkpoint (mmspectral-converted, or an official GFNet,
SpectFormer, HorNet or mmpretrain HorNet one). Works for every family with
global filters: GFNet, SpectFormer and HorNet-GF. Writes

* ``DIR/spectra.png``: one tile per filter layer, the channel-averaged
  magnitude of its frequency response, zero frequency centred, log scale (as
  in the GFNet paper's figure);
* ``DIR/kernels.png``: the same layers' spatial kernels (the inverse FFT of
  the filter, centred), channel-averaged absolute value;
* ``DIR/layers/<layer>.png``: the first ``--channels`` channels of each layer,
  spectrum above and kernel below.
"""
import argparse
import fnmatch
import math
import os
import os.path as osp
from typing import Dict, Tuple

import torch
from torch import Tensor

from mmspectral.checkpoint import is_remote
from mmspectral.models.layers.utils import guess_native_size

FILTER_KEY = 'complex_weight'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('source', help='config (.py) or checkpoint')
    parser.add_argument('--out', required=True, help='output directory')
    parser.add_argument(
        '--checkpoint', help='weights to load into the config\'s model')
    parser.add_argument(
        '--channels', type=int, default=8,
        help='channels shown per layer in DIR/layers. Defaults to 8')
    parser.add_argument(
        '--layers', default='*',
        help='glob over layer names, e.g. "*blocks.0.*". Defaults to all')
    parser.add_argument(
        '--debug', action='store_true', help='show tracebacks of errors')
    return parser.parse_args(argv)


def filters_from_config(config: str, checkpoint=None) -> Dict[str, Tensor]:
    from mmspectral.checkpoint import state_dict_of
    from mmspectral.models.layers import GlobalFilter
    from .checkpoints import check_checkpoint_matches
    from .run_setup import load_config
    from .runner import build_model
    model = build_model(load_config(config))
    if checkpoint:
        model.load_state_dict(state_dict_of(
            check_checkpoint_matches(model, checkpoint,
                                     what=f'the model of {config}')))
    return {
        name: module.complex_weight.detach()
        for name, module in model.named_modules()
        if isinstance(module, GlobalFilter)
    }


def filters_from_checkpoint(path: str) -> Dict[str, Tensor]:
    from mmspectral.converters.common import load_official_state_dict
    filters = {}
    for key, value in load_official_state_dict(path).items():
        if not key.endswith(FILTER_KEY) or value.dim() != 4 or \
                value.shape[-1] != 2:
            continue
        if key.endswith('dwconv.' + FILTER_KEY):
            # official / mmpretrain HorNet store (C, h, w, 2)
            value = value.permute(1, 2, 0, 3)
        filters[key[:-len(FILTER_KEY) - 1]] = value
    return filters


def load_filters(args) -> Dict[str, Tensor]:
    if not is_remote(args.source) and not osp.isfile(args.source):
        raise FileNotFoundError(f'{args.source} not found')
    if args.source.endswith('.py'):
        filters = filters_from_config(args.source, args.checkpoint)
    else:
        filters = filters_from_checkpoint(args.source)
    filters = {
        name: weight.float()
        for name, weight in filters.items()
        if fnmatch.fnmatch(name, args.layers)
    }
    if not filters:
        raise ValueError(
            f'no global filters in {args.source} (matching {args.layers!r}); '
            'GFNet, SpectFormer and HorNet-GF have them, AFNO mixes with an '
            'MLP instead')
    return filters


def spectrum_and_kernel(weight: Tensor) -> Tuple[Tensor, Tensor]:
    """Centred ``(C, H, W)`` magnitude spectrum (log10) and spatial kernel of
    a ``(h, w, C, 2)`` half-spectrum filter."""
    height, width = guess_native_size(*weight.shape[:2])
    half = torch.view_as_complex(weight.contiguous()).permute(2, 0, 1)
    # with ortho FFTs on both sides, the layer convolves with this kernel
    kernel = torch.fft.irfft2(half, s=(height, width))
    spectrum = torch.fft.fft2(kernel).abs()
    centred = torch.fft.fftshift(spectrum, dim=(-2, -1))
    return (torch.log10(centred + 1e-8),
            torch.fft.fftshift(kernel, dim=(-2, -1)))


def tile_grid(count: int) -> Tuple[int, int]:
    cols = math.ceil(math.sqrt(count))
    return math.ceil(count / cols), cols


def plot_tiles(images, titles, path, cmap):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows, cols = tile_grid(len(images))
    fig, axes = plt.subplots(
        rows, cols, figsize=(2.2 * cols, 2.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis('off')
    for ax, image, title in zip(axes.flat, images, titles):
        ax.imshow(image.numpy(), cmap=cmap)
        ax.set_title(title, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_layer(name, spectrum, kernel, channels, path):
    count = min(channels, spectrum.shape[0])
    images = list(spectrum[:count]) + list(kernel[:count])
    titles = [f'{name}\nch {c} |F| (log)' for c in range(count)] + [
        f'ch {c} kernel' for c in range(count)
    ]
    plot_tiles(images, titles, path, 'viridis')


def main(argv=None):
    from .run_setup import check_output_path, reported_errors
    args = parse_args(argv)
    with reported_errors(args.debug):
        check_output_path(args.out, '--out', folder=True)
        return plot_filters(args, load_filters(args))


def plot_filters(args, filters: Dict[str, Tensor]) -> int:
    layer_dir = osp.join(args.out, 'layers')
    os.makedirs(layer_dir, exist_ok=True)
    spectra, kernels = [], []
    for name, weight in filters.items():
        spectrum, kernel = spectrum_and_kernel(weight)
        spectra.append(spectrum.mean(0))
        kernels.append(kernel.abs().mean(0))
        plot_layer(name, spectrum, kernel, args.channels,
                   osp.join(layer_dir, f'{name}.png'))
    names = list(filters)
    plot_tiles(spectra, names, osp.join(args.out, 'spectra.png'), 'viridis')
    plot_tiles(kernels, names, osp.join(args.out, 'kernels.png'), 'magma')
    print(f'{len(filters)} filter layers -> {args.out}/spectra.png, '
          f'{args.out}/kernels.png, {layer_dir}/')
    return 0
