"""Comparing our models with the official fixtures (a helper for the
reference tests, not a test module)."""
import torch

TOL = 1e-5


def to_bchw(x):
    return x.permute(0, 3, 1, 2)


def run_with_taps(model, x, modules):
    """Model outputs plus the (B, C, H, W) outputs of ``modules``."""
    taps = []
    handles = [
        m.register_forward_hook(lambda _, __, out: taps.append(to_bchw(out)))
        for m in modules
    ]
    try:
        with torch.no_grad():
            outs = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return outs, taps


def logits_from(features, state_dict):
    return features @ state_dict['head.fc.weight'].T + \
        state_dict['head.fc.bias']


def assert_close(name, actual, expected, tol=TOL):
    diff = (actual - expected).abs().max().item()
    assert diff <= tol, f'{name}: max abs diff {diff:.2e}'
