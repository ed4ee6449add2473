"""Regenerate the official-implementation parity fixtures of
``tests/data/reference`` from the official code.

    python tools/misc/make_reference_fixtures.py --out DIR
        [--gfnet GFNet/] [--hornet HorNet/] [--afno AFNO-transformer/]
        [--spectformer SpectFormers/] [--cases NAME ...]
        [--compare tests/data/reference]

Each option names a checkout of the official repository (at the commit the
fixture records, see ``tests/data/reference/README.md``):
https://github.com/raoyongming/GFNet, https://github.com/raoyongming/HorNet,
https://github.com/NVlabs/AFNO-transformer and
https://github.com/badripatro/SpectFormers. The official modules are
imported from there, nothing of them is copied here; they need ``timm``
(the fixtures were made with timm 1.0.31). A case is made only when its
checkout is given.

For each case the official model is built with small arguments, its float
parameters and buffers are drawn from a generator seeded with
``seed + 1000`` (in float64, then cast; the rules are in the README), the
inputs from one seeded with ``seed + 2000``, and the model runs in eval
mode, float32, on the CPU with 2 threads; the outputs are read where the
README says (forward hooks on the official modules), and each is compared
with the same code run in float64. ``--compare`` checks every file made
against the fixture of the same name: the weights and inputs must be
identical, the outputs equal up to float32 rounding (bit-identical with
the torch build and the kind of CPU that made the fixtures; up to ~5e-6 on
another CPU, whose convolution and matrix kernels round differently).
"""
import argparse
import functools
import importlib.util
import math
import os
import os.path as osp
import sys
import types
from argparse import Namespace
from typing import Callable, Dict, NamedTuple, Tuple

import numpy
import torch
import torch.nn as nn

REPOS = dict(
    gfnet=('raoyongming/GFNet', '2de48b626ea805de82a7f389fed930af1ae0340d'),
    hornet=('raoyongming/HorNet', 'ac9e21058935f1cf8e27fcca72bbf598fa691d69'),
    afno=('NVlabs/AFNO-transformer',
          '941e924ffdb34cb93897b5fd6e22e5965fdc1111'),
    spectformer=('badripatro/SpectFormers',
                 'b6cf487a0ea71eeb252d5ba0fc7410b3f5dbd256'),
)
THREADS = 2
# outputs of another CPU may round differently (see differences())
OUTPUT_TOLERANCE = 1e-5
AFNO_ARGS = dict(fno_blocks=4, fno_bias=False, fno_softshrink=0.01,
                 mixing_type='afno', hidden_size=64, double_skip=False,
                 checkpoint_activations=False)
NOTES_FILE = 'tests/data/reference/README.md'


# -- importing the official code ----------------------------------------------

def _stub_unused_imports(afno_args: dict):
    """Modules the official files import but never use (or, for AFNONet,
    the training script's argument parser), so that only torch and timm
    are needed."""
    try:
        importlib.import_module('numpy.lib.arraypad')
    except ImportError:  # private in numpy 2
        sys.modules['numpy.lib.arraypad'] = types.SimpleNamespace(
            pad=numpy.pad)
    sys.modules.setdefault('pytorch_wavelets', types.SimpleNamespace(
        DWTForward=None, DWTInverse=None))
    sys.modules['main_afnonet'] = types.SimpleNamespace(
        get_args=lambda: Namespace(**afno_args))
    try:
        import einops  # noqa: F401
    except ImportError:
        layers = types.SimpleNamespace(torch=types.SimpleNamespace(
            Rearrange=None))
        sys.modules['einops'] = types.SimpleNamespace(
            rearrange=None, repeat=None, layers=layers)
        sys.modules['einops.layers'] = layers
        sys.modules['einops.layers.torch'] = layers.torch


def import_official(repo: str, relative: str, name: str) -> types.ModuleType:
    """``relative`` of the checkout ``repo`` as module ``name`` (the
    checkout's root and the file's folder on ``sys.path``, as the official
    scripts run)."""
    path = osp.join(repo, relative)
    for folder in (repo, osp.dirname(path)):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # timm's register_model looks it up
    try:
        spec.loader.exec_module(module)
    except ImportError as err:
        raise SystemExit(f'error: importing {path} failed ({err}); the '
                         'official code needs timm: pip install '
                         'timm==1.0.31') from None
    return module


# -- random weights and inputs ----------------------------------------------

_NORMS = (nn.LayerNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)
_LAYER_SCALES = ('gamma', 'gamma1', 'gamma2')


def randomise(model: nn.Module, seed: int):
    """Draw every float parameter and buffer of ``model`` (see the README's
    rules): convolutions and linear layers, then norms, module by module,
    then the remaining parameters by name, in ``named_parameters`` order."""
    generator = torch.Generator().manual_seed(seed)

    def normal(tensor, std, mean=0.):
        value = torch.randn(tensor.shape, generator=generator,
                            dtype=torch.float64) * std + mean
        tensor.copy_(value.to(tensor.dtype))

    def uniform(tensor, low, high):
        value = torch.rand(tensor.shape, generator=generator,
                           dtype=torch.float64) * (high - low) + low
        tensor.copy_(value.to(tensor.dtype))

    done = set()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
                normal(module.weight, 1 / math.sqrt(module.weight[0].numel()))
                if module.bias is not None:
                    normal(module.bias, 0.05)
            elif isinstance(module, _NORMS) or type(
                    module).__name__ == 'LayerNorm':
                normal(module.weight, 0.1, 1.)
                normal(module.bias, 0.05)
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    normal(module.running_mean, 0.1)
                    uniform(module.running_var, 0.5, 1.5)
            else:
                continue
            done.update(id(t) for t in module.parameters(recurse=False))
        for name, param in model.named_parameters():
            if id(param) in done:
                continue
            leaf = name.rsplit('.', 1)[-1]
            if leaf == 'complex_weight':
                normal(param, 0.3)
            elif leaf in _LAYER_SCALES:
                uniform(param, 0.3, 1.0)
            elif leaf == 'pos_embed':
                normal(param, 0.05)
            elif leaf in ('w1', 'w2'):  # AFNO: (2, blocks, size, size)
                normal(param, 1 / math.sqrt(param.shape[2]))
            elif leaf in ('b1', 'b2'):
                normal(param, 0.05)
            else:
                raise ValueError(f'no rule randomises {name}')


def inputs_of(shapes: Dict[str, tuple], seed: int) -> Dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {name: torch.randn(shape, generator=generator)
            for name, shape in shapes.items()}


# -- reading outputs ----------------------------------------------------------

def tokens_to_bchw(tokens: torch.Tensor) -> torch.Tensor:
    """``(B, N, C)`` tokens of a square grid as ``(B, C, H, W)``."""
    side = int(math.isqrt(tokens.shape[1]))
    return tokens.reshape(tokens.shape[0], side, side, -1).permute(0, 3, 1, 2)


def run_with_taps(model, run: Callable, taps: Dict[str, nn.Module],
                  layout: Callable = lambda x: x) -> Dict[str, torch.Tensor]:
    """``run()``'s outputs plus the output of each module of ``taps``
    (in ``layout``)."""
    found = {}
    handles = [
        module.register_forward_hook(
            lambda _, __, out, name=name: found.__setitem__(
                name, layout(out).contiguous()))
        for name, module in taps.items()
    ]
    try:
        with torch.no_grad():
            found.update(run())
    finally:
        for handle in handles:
            handle.remove()
    return found


def _isotropic_outputs(model, x, prefix=''):
    taps = {'embed_bchw': model.pos_drop}
    taps.update({f'block{i}_out_bchw': block
                 for i, block in enumerate(model.blocks)})
    taps['tokens_before_norm_bchw'] = model.blocks[-1]
    outs = run_with_taps(model, lambda: dict(
        forward_features=model.forward_features(x), logits=model(x)), taps,
        tokens_to_bchw)
    return outs


def _pyramid_outputs(model, x):
    return run_with_taps(model, lambda: dict(
        forward_features=model.forward_features(x), logits=model(x)),
        {f'stage{i}_bchw': stage for i, stage in enumerate(model.blocks)},
        tokens_to_bchw)


def _hornet_outputs(model, inputs):
    outs = {}
    for name, x in inputs.items():
        suffix = name[1:]  # 'x_256x320' -> '_256x320'
        found = run_with_taps(model, lambda: dict(
            forward_features=model.forward_features(x), logits=model(x)),
            {f'stage{i}_bchw': stage[-1]
             for i, stage in enumerate(model.stages)})
        outs.update({k + suffix: v for k, v in found.items()})
    return outs


def _hier_spectformer_outputs(model, x):
    taps = {f'stage{i}_bchw': getattr(model, f'norm{i + 1}')
            for i in range(model.num_stages - 1)}
    taps[f'stage{model.num_stages - 1}_bchw'] = getattr(
        model, f'block{model.num_stages}')[-1]
    return run_with_taps(model, lambda: dict(
        forward_features=model.forward_features(x), logits=model(x)), taps,
        tokens_to_bchw)


def _afnonet_outputs(model, x):
    outs = _isotropic_outputs(model, x)
    for block in model.blocks:
        block.double_skip = True
    try:
        skip = run_with_taps(model, lambda: dict(
            forward_features=model.forward_features(x)),
            {'tokens_before_norm_bchw': model.blocks[-1]}, tokens_to_bchw)
    finally:
        for block in model.blocks:
            block.double_skip = False
    outs.update({f'{k}__double_skip_true': v for k, v in skip.items()})
    return outs


# -- the cases ----------------------------------------------------------------

class Case(NamedTuple):
    repo: str  # key of REPOS
    file: str
    cls: str
    kwargs: dict
    inputs: Dict[str, tuple]
    outputs: Callable  # (model, inputs) -> {name: tensor}
    seed: int
    extra: dict = {}


def _gnconv(orders, gf_sizes=()):
    s = 1.0 / 3.0
    specs = [dict(order=order, s=s) for order in orders]
    for stage, (h, w) in gf_sizes:
        specs[stage].update(h=h, w=w, gflayer='GlobalLocalFilter')
    return specs


IMAGE = {'x': (2, 3, 224, 224)}
HORNET = dict(depths=[1, 1, 2, 1], base_dim=16, block='Block',
              layer_scale_init_value=1e-06, num_classes=10)
CASES = {
    'gfnet_isotropic': Case(
        'gfnet', 'gfnet.py', 'GFNet',
        dict(img_size=224, patch_size=16, embed_dim=64, depth=2,
             mlp_ratio=4, num_classes=10),
        IMAGE, lambda m, i: _isotropic_outputs(m, i['x']), 101),
    'gfnet_pyramid': Case(
        'gfnet', 'gfnet.py', 'GFNetPyramid',
        dict(img_size=224, patch_size=4, embed_dim=[16, 32, 64, 128],
             depth=[1, 1, 2, 1], mlp_ratio=[4, 4, 4, 4], init_values=1e-05,
             no_layerscale=False, num_classes=10),
        IMAGE, lambda m, i: _pyramid_outputs(m, i['x']), 102),
    'hornet_7x7': Case(
        'hornet', 'hornet.py', 'HorNet',
        dict(HORNET, gnconv=_gnconv([2, 3, 4, 5])),
        IMAGE, _hornet_outputs, 103),
    'hornet_gf': Case(
        'hornet', 'hornet.py', 'HorNet',
        dict(HORNET, gnconv=_gnconv([2, 3, 4, 5], [(2, (14, 8)),
                                                   (3, (7, 4))])),
        dict(IMAGE, x_256x320=(1, 3, 256, 320)), _hornet_outputs, 104),
    'afno2d_layer': Case(
        'afno', 'afno/afno2d.py', 'AFNO2D',
        dict(hidden_size=64, num_blocks=4, sparsity_threshold=0.01,
             hard_thresholding_fraction=1.0, hidden_size_factor=1),
        dict(x_14x14=(2, 196, 64), x_12x20=(2, 240, 64)),
        lambda m, i: dict(out_14x14=m(i['x_14x14'], spatial_size=(14, 14)),
                          out_12x20=m(i['x_12x20'], spatial_size=(12, 20))),
        105),
    'afnonet_tiny': Case(
        'afno', 'classification/afnonet.py', 'AFNONet',
        dict(img_size=224, patch_size=16, embed_dim=64, depth=2,
             mlp_ratio=4, num_classes=10),
        IMAGE, lambda m, i: _afnonet_outputs(m, i['x']), 106,
        dict(stub_get_args=AFNO_ARGS)),
    'spectformer_vanilla': Case(
        'spectformer', 'vanilla_architecture/spectformer.py', 'SpectFormer',
        dict(img_size=224, patch_size=16, embed_dim=48, depth=6,
             mlp_ratio=4, num_classes=10),
        IMAGE, lambda m, i: _isotropic_outputs(m, i['x']), 107),
    'spectformer_hier': Case(
        'spectformer', 'hierarchical_architecture/spectformer.py',
        'SpectFormer',
        dict(stem_hidden_dim=16, embed_dims=[64, 128, 48, 64],
             num_heads=[2, 4, 3, 4], mlp_ratios=[8, 8, 4, 4],
             depths=[1, 1, 1, 1], sr_ratios=[4, 2, 1, 1], num_classes=10,
             token_label=True),
        IMAGE, lambda m, i: _hier_spectformer_outputs(m, i['x']), 108,
        dict(official_kwargs_callables=dict(
            norm_layer='functools.partial(torch.nn.LayerNorm, eps=1e-06)'))),
}


def build(case: Case, module: types.ModuleType) -> nn.Module:
    """The official model of ``case``, with the placeholders of its
    arguments (class names as strings) resolved in ``module``."""
    kwargs = dict(case.kwargs)
    if 'gnconv' in kwargs:
        kwargs['block'] = getattr(module, kwargs['block'])
        kwargs['gnconv'] = [
            functools.partial(module.gnconv, **{
                k: getattr(module, v) if k == 'gflayer' else v
                for k, v in spec.items()
            }) for spec in kwargs['gnconv']
        ]
    if 'official_kwargs_callables' in case.extra:
        kwargs['norm_layer'] = functools.partial(nn.LayerNorm, eps=1e-6)
    return getattr(module, case.cls)(**kwargs)


def float64_gaps(model, case, inputs, outputs) -> dict:
    """Per output, the largest difference to the same code in float64."""
    try:
        model.double()
        exact = case.outputs(model, {k: v.double() for k, v in inputs.items()})
    except RuntimeError as err:
        return f'not available: RuntimeError: {str(err).splitlines()[0]}'
    finally:
        model.float()
    return {k: (exact[k] - outputs[k].double()).abs().max().item()
            for k in outputs}


def make(name: str, case: Case, repo: str) -> dict:
    module = import_official(repo, case.file, f'official_{name}')
    torch.manual_seed(case.seed)
    model = build(case, module).eval()
    randomise(model, case.seed + 1000)
    inputs = inputs_of(case.inputs, case.seed + 2000)
    outputs = {k: v.contiguous() for k, v in
               case.outputs(model, inputs).items()}
    official_repo, commit = REPOS[case.repo]
    return dict(
        official_repo=official_repo, official_commit=commit,
        official_file=case.file, official_class=case.cls,
        official_kwargs=case.kwargs,
        state_dict={k: v.clone() for k, v in model.state_dict().items()},
        inputs=inputs, outputs=outputs,
        notes=f'See {NOTES_FILE}, section {name}.',
        case=name, extra=case.extra,
        fp64_maxabs_diff=float64_gaps(model, case, inputs, outputs),
        generator=dict(
            torch=torch.__version__,
            timm=getattr(sys.modules.get('timm'), '__version__', None),
            numpy=numpy.__version__, device='cpu', num_threads=THREADS,
            seed=case.seed, script='tools/misc/make_reference_fixtures.py'))


def differences(made: dict, fixture: dict) -> Tuple[list, float]:
    """What differs between a made file and a stored fixture: weights and
    inputs must be identical, outputs within :data:`OUTPUT_TOLERANCE`
    (float32 convolutions and matrix products round differently on other
    CPUs). Also returns the largest output difference."""
    found, largest = [], 0.
    for part in ('state_dict', 'inputs', 'outputs'):
        ours, theirs = made[part], fixture[part]
        if set(ours) != set(theirs):
            found.append(f'{part}: keys {sorted(set(ours) ^ set(theirs))}')
            continue
        for key in ours:
            if ours[key].shape != theirs[key].shape:
                found.append(f'{part}[{key}]: shape {tuple(ours[key].shape)}'
                             f' != {tuple(theirs[key].shape)}')
                continue
            diff = (ours[key].double() - theirs[key].double()).abs().max()
            if part == 'outputs':
                largest = max(largest, diff.item())
            if diff > (OUTPUT_TOLERANCE if part == 'outputs' else 0):
                found.append(f'{part}[{key}]: max abs diff {diff:.3g}')
    for key in ('official_kwargs', 'official_file', 'official_class'):
        if made[key] != fixture[key]:
            found.append(f'{key}: {made[key]!r} != {fixture[key]!r}')
    return found, largest


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', required=True, help='folder to write to')
    for key, (repo, _) in REPOS.items():
        parser.add_argument(f'--{key}', metavar='CHECKOUT',
                            help=f'checkout of github.com/{repo}')
    parser.add_argument('--cases', nargs='+', choices=list(CASES),
                        help='cases to make (default: every case whose '
                        'checkout is given)')
    parser.add_argument('--compare', metavar='DIR',
                        help='check each file made against DIR/<case>.pth')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    names = args.cases or [n for n, c in CASES.items()
                           if getattr(args, c.repo)]
    missing = sorted({CASES[n].repo for n in names
                      if not getattr(args, CASES[n].repo)})
    if not names or missing:
        raise SystemExit('error: give the checkout(s) of '
                         f'{", ".join(missing) or "the official code"} '
                         '(--gfnet, --hornet, --afno, --spectformer)')
    for name in names:
        repo = getattr(args, CASES[name].repo)
        if not osp.isfile(osp.join(repo, CASES[name].file)):
            raise SystemExit(
                f'error: {osp.join(repo, CASES[name].file)} does not exist; '
                f'is {repo} a checkout of github.com/'
                f'{REPOS[CASES[name].repo][0]}?')
    _stub_unused_imports(AFNO_ARGS)
    torch.set_num_threads(THREADS)
    os.makedirs(args.out, exist_ok=True)
    failed = []
    for name in names:
        case = CASES[name]
        made = make(name, case, getattr(args, case.repo))
        path = osp.join(args.out, f'{name}.pth')
        torch.save(made, path)
        line = f'{path}: {len(made["state_dict"])} keys, outputs ' \
            f'{", ".join(made["outputs"])}'
        if args.compare:
            found, largest = differences(made, torch.load(
                osp.join(args.compare, f'{name}.pth'), weights_only=True))
            failed += [name] if found else []
            line += ('; weights and inputs identical to the fixture, '
                     f'outputs within {largest:.2g}' if not found else
                     '; DIFFERS: ' + '; '.join(found[:5]))
        print(line, flush=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
