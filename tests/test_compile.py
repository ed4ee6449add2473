"""torch.compile friendliness: every backbone compiles to one graph, with no
graph break inside a block, and input sizes within a bucket reuse it."""
import pytest
import torch
import torch._dynamo as dynamo

from backbone_cases import CASES, build

# one bucket: multiples of 32 (no padding anywhere), and small enough that
# every conv of the tiny archs stays on the same side of torch's own
# output-size heuristic (which guards on C * H' * W' <= 20480 per conv)
BUCKET = [(64, 96), (96, 64), (64, 128), (96, 96)]


@pytest.mark.parametrize('case', sorted(CASES))
def test_one_graph_for_every_size_in_a_bucket(case):
    dynamo.reset()
    model = build(case).eval()
    graphs = []

    def counting_backend(graph_module, example_inputs):
        graphs.append(graph_module)
        return graph_module.forward

    compiled = torch.compile(model, backend=counting_backend, dynamic=True)
    with torch.no_grad():
        for size in BUCKET:
            x = torch.randn(1, 3, *size)
            for out, expected in zip(compiled(x), model(x)):
                assert torch.allclose(out, expected, atol=1e-4), size
    assert len(graphs) == 1


@pytest.mark.parametrize('case', sorted(CASES))
def test_no_graph_break(case):
    dynamo.reset()
    model = build(case).train()  # training: the filter resize is traced too
    explanation = dynamo.explain(model)(torch.randn(1, 3, 96, 128))
    assert explanation.graph_break_count == 0, explanation.break_reasons
