"""Every op in the registry against its PyTorch twin: the same drawn example's values and gradients, in float64."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import HypothesisChooser

from tinygrad_edu import Tensor
from tinygrad_edu.opspecs import REGISTRY, NumpyChooser

torch = pytest.importorskip("torch")


def test_every_registered_op_has_a_torch_twin():
    missing = [name for name, spec in REGISTRY.items() if spec.example(NumpyChooser(0)).twin is None]
    assert not missing, f"ops without a PyTorch twin in tinygrad_edu.opspecs: {missing}"


@pytest.mark.parametrize("name", sorted(REGISTRY))
@settings(max_examples=25)
@given(data=st.data())
def test_op_matches_torch(name, data):
    f, arrays, twin = REGISTRY[name].example(HypothesisChooser(data))
    ours = [Tensor(a, requires_grad=True) for a in arrays]
    out = f(*ours)
    theirs = [torch.tensor(np.asarray(a, np.float64), requires_grad=True) for a in arrays]
    t_out = twin(torch, *theirs)
    np.testing.assert_allclose(out.data, t_out.detach().numpy(), rtol=1e-10, atol=1e-12,
                               err_msg=f"{name}: values")
    g = np.linspace(-1, 1, out.size).reshape(out.shape)   # a gradient that tells the elements apart
    out.backward(g)
    t_out.backward(torch.tensor(g))
    for i, (x, t) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=f"{name}: the gradient of input {i}")
