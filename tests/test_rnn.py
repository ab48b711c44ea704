"""nn.RNN against torch.nn.RNN: the same parameters by name and shape, the same outputs, h_n and gradients."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_edu import nn
from tinygrad_edu.autograd import ShapeError
from tinygrad_edu.tensor import Tensor

torch = pytest.importorskip("torch")


@st.composite
def rnn_cases(draw):
    """Sizes and options torch's RNN takes, and inputs of the matching shapes (batched or not)."""
    case = {"input_size": draw(st.integers(1, 5)), "hidden_size": draw(st.integers(1, 6)),
            "num_layers": draw(st.integers(1, 3)), "nonlinearity": draw(st.sampled_from(["tanh", "relu"])),
            "bias": draw(st.booleans()), "batch_first": draw(st.booleans())}
    length, batch = draw(st.integers(1, 5)), draw(st.one_of(st.none(), st.integers(1, 3)))
    seed = draw(st.integers(0, 2**16))
    return case, length, batch, draw(st.booleans()), seed


def twins(case, seed):
    torch.manual_seed(seed)
    theirs = torch.nn.RNN(**case, dtype=torch.float64)
    ours = nn.RNN(**case, dtype=np.float64)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return theirs, ours


@settings(max_examples=40, deadline=None)
@given(rnn_cases())
def test_values_h_n_and_every_gradient_equal_torchs(drawn):
    case, length, batch, with_h0, seed = drawn
    theirs, ours = twins(case, seed)
    rng = np.random.default_rng(seed)
    H, layers = case["hidden_size"], case["num_layers"]
    if batch is None:
        x, h0 = rng.standard_normal((length, case["input_size"])), rng.standard_normal((layers, H))
    else:
        shape = (batch, length) if case["batch_first"] else (length, batch)
        x, h0 = rng.standard_normal((*shape, case["input_size"])), rng.standard_normal((layers, batch, H))
    xt, xo = torch.tensor(x, requires_grad=True), Tensor(x, requires_grad=True)
    out_t, hn_t = theirs(xt, torch.tensor(h0)) if with_h0 else theirs(xt)
    out_o, hn_o = ours(xo, h0) if with_h0 else ours(xo)
    np.testing.assert_allclose(out_o.data, out_t.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(hn_o.data, hn_t.detach().numpy(), rtol=1e-12, atol=1e-12)
    weights = rng.standard_normal(out_o.shape)    # a loss that weighs every output and h_n differently
    ((out_t * torch.tensor(weights)).sum() + (hn_t ** 2).sum()).backward()
    ((out_o * weights).sum() + (hn_o ** 2).sum()).backward()
    np.testing.assert_allclose(xo.grad, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(getattr(ours, name).grad, p.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_parameters_are_named_shaped_and_drawn_as_torchs():
    theirs = torch.nn.RNN(4, 8, num_layers=2)
    ours = nn.RNN(4, 8, num_layers=2, seed=0)
    assert {k: tuple(v.shape) for k, v in theirs.state_dict().items()} == \
           {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert list(ours.state_dict()) == list(theirs.state_dict())
    values = np.concatenate([p.data.ravel() for p in ours.parameters()])
    bound = 1 / np.sqrt(8)
    assert values.dtype == np.float32 and np.abs(values).max() <= bound and np.abs(values).max() > 0.9 * bound
    assert nn.specs.state_shapes({"type": "RNN", "input_size": 4, "hidden_size": 8, "num_layers": 2}) == \
           {k: (tuple(v.shape), "float32") for k, v in theirs.state_dict().items()}
    assert "bias_ih_l0" not in nn.RNN(4, 8, bias=False).state_dict()


def test_a_character_rnn_learns_one_sequence_by_heart():
    """Backprop through time is the ordinary walk: 300 Adam steps fit the next character of one sequence."""
    from tinygrad_edu import optim
    from tinygrad_edu.nn import functional as F
    ids = np.array([1, 2, 3, 1, 3, 2, 0])
    emb, rnn, head = nn.Embedding(4, 8, seed=0), nn.RNN(8, 16, seed=1), nn.Linear(16, 4, seed=2)
    params = [*emb.parameters(), *rnn.parameters(), *head.parameters()]
    opt = optim.Adam(params, lr=0.02)
    for _ in range(300):
        out, _ = rnn(emb(ids[:-1]))
        loss = F.cross_entropy(head(out), ids[1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05


@pytest.mark.parametrize("make, message", [
    (lambda: nn.RNN(3, 4, nonlinearity="gelu"), "RNN: unknown nonlinearity .gelu.; choose one of tanh, relu"),
    (lambda: nn.RNN(0, 4), "RNN: input_size must be an integer ≥ 1, got 0"),
    (lambda: nn.RNN(3, 4, num_layers=1.5), "RNN: num_layers must be an integer ≥ 1"),
])
def test_bad_arguments_are_refused_by_name(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_input_and_h0_shapes_are_named():
    rnn = nn.RNN(3, 4, num_layers=2)
    with pytest.raises(ShapeError, match=r"RNN: input must be \(L, N, 3\).*got \(5, 2, 2\)"):
        rnn(np.zeros((5, 2, 2), np.float32))
    with pytest.raises(ShapeError, match=r"RNN: h0 must be \(2, 2, 4\) \(num_layers, N, hidden_size\), got \(1, 2"):
        rnn(np.zeros((5, 2, 3), np.float32), np.zeros((1, 2, 4), np.float32))
    with pytest.raises(ShapeError, match=r"h0 must be \(2, 4\) \(num_layers, hidden_size\)"):
        rnn(np.zeros((5, 3), np.float32), np.zeros((2, 1, 4), np.float32))
