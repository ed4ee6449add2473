"""tools/misc/make_reference_fixtures.py, the generator of the parity
fixtures (tests/data/reference): what it needs, and the seeds and
arguments it makes them from (running the official code needs the official
checkouts, see the fixtures' README)."""
import pytest
import torch

from conftest import load_fixture
from tool_modules import load_tool


@pytest.fixture(scope='module')
def generator():
    return load_tool('misc/make_reference_fixtures.py')


def test_the_generator_needs_the_official_checkouts(generator, tmp_path):
    with pytest.raises(SystemExit, match='give the checkout'):
        generator.main(['--out', str(tmp_path)])
    with pytest.raises(SystemExit, match='give the checkout.*hornet'):
        generator.main(['--out', str(tmp_path), '--cases', 'hornet_gf'])
    with pytest.raises(SystemExit, match='gfnet.py does not exist.*'
                       'raoyongming/GFNet'):
        generator.main(['--out', str(tmp_path), '--gfnet', str(tmp_path)])
    assert not list(tmp_path.iterdir())


def test_every_fixture_is_a_case_of_the_generator(generator):
    for name, case in generator.CASES.items():
        stored = load_fixture(f'{name}.pth')
        assert stored['official_kwargs'] == case.kwargs, name
        assert stored['official_file'] == case.file, name
        assert stored['extra'] == case.extra, name
        assert stored['generator']['seed'] == case.seed, name
        inputs = generator.inputs_of(case.inputs, case.seed + 2000)
        assert inputs.keys() == stored['inputs'].keys(), name
        for key, value in inputs.items():
            assert torch.equal(value, stored['inputs'][key]), (name, key)


def test_random_weights_follow_the_rules(generator):
    """The README's rules, on modules of each kind (the fixtures' weights
    were checked to be drawn exactly so, see the README)."""
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3),
                                torch.nn.BatchNorm2d(8),
                                torch.nn.LayerNorm(8))
    model.gamma1 = torch.nn.Parameter(torch.zeros(4096))
    generator.randomise(model, 1)
    conv, bn, ln = model
    assert conv.weight.std().item() == pytest.approx(27**-0.5, rel=0.15)
    assert bn.running_var.min() >= 0.5 and bn.running_var.max() <= 1.5
    assert ln.weight.mean().item() == pytest.approx(1, abs=0.1)
    assert model.gamma1.min() >= 0.3 and model.gamma1.max() <= 1.0
    again = torch.nn.Sequential(*[type(m)(*args) for m, args in zip(
        model, ((3, 8, 3), (8, ), (8, )))])
    again.gamma1 = torch.nn.Parameter(torch.zeros(4096))
    generator.randomise(again, 1)
    for key, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
