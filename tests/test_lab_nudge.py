"""The lab's nudge (POST /api/nudge): L(w ± ε) by the tutorial's forward pass in float64, (L(w+ε) − L(w−ε))/2ε
beside the backward pass's dW, exactly as the formula says; its refusals; the weights left as they were."""
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_lab_api import Client, image_of, make_lab

from tinygrad_edu import manual


@pytest.fixture
def client():
    c = Client(make_lab())
    yield c
    c.close()


def loss_by_hand(arrays, image, label):
    """−log softmax(Z2)[label] for one image, by manual.py in float64 (the lab's input scaling: pixels/255)."""
    Z2 = manual.forward_prop(*arrays, np.array(image, dtype=np.float64)[:, None])[2][:, 0]
    Z2 = Z2 - Z2.max()
    return float(np.log(np.exp(Z2).sum()) - Z2[label])


@pytest.mark.parametrize("param, index", [("W2", [7, 0]), ("W2", [3, 9]), ("b2", [4, 0]), ("W1", [2, 400]),
                                          ("b1", [5, 0])])
def test_a_nudge_is_the_central_difference_of_the_loss_beside_the_backward_passs_gradient(client, param, index):
    lab = client.lab
    image, label, eps = image_of(lab, 3), int(lab.y_test[3]), 1e-3
    before = [a.copy() for a in lab.net.arrays]
    n = client.ok("/api/nudge", {"image": image, "label": label, "param": param, "index": index, "eps": eps})
    k = ("W1", "b1", "W2", "b2").index(param)
    plus, minus = [np.asarray(a, dtype=np.float64).copy() for a in before], [a.astype(np.float64) for a in before]
    w = plus[k][tuple(index)]
    plus[k][tuple(index)] = w + eps
    minus[k][tuple(index)] = w - eps
    assert n["w"] == w and n["eps"] == eps and n["param"] == param and n["index"] == index
    assert n["loss_plus"] == pytest.approx(loss_by_hand(plus, image, label), rel=1e-13, abs=1e-15)
    assert n["loss_minus"] == pytest.approx(loss_by_hand(minus, image, label), rel=1e-13, abs=1e-15)
    assert n["numeric"] == (n["loss_plus"] - n["loss_minus"]) / (2 * eps)          # the formula, exactly
    # the backward pass's element: the tutorial's hand-derived gradients for this one image (m = 1)
    X = np.array(image)[:, None]
    Z1, A1, Z2, A2 = manual.forward_prop(*before, X)
    grads = dict(zip(("dW1", "db1", "dW2", "db2"), manual.backward_prop(Z1, A1, Z2, A2, before[0], before[2], X,
                                                                         np.array([label]))))
    assert n["backward"] == pytest.approx(float(grads["d" + param][tuple(index)]), rel=1e-9, abs=1e-15)
    assert n["difference"] == abs(n["numeric"] - n["backward"])
    assert n["difference"] <= 1e-6 + 1e-4 * abs(n["backward"])     # finite differences agree with backward
    assert all(np.array_equal(a, b) for a, b in zip(lab.net.arrays, before))     # nothing moved for good
    assert all(p.grad is None for p in lab.params)


GOOD = {"label": 3, "param": "W2", "index": [0, 0], "eps": 1e-3}


@pytest.mark.parametrize("change, message", [
    ({"param": "W3"}, "param must be one of W1, b1, W2, b2"),
    ({"param": None}, "param must be one of"),
    ({"index": [10, 0]}, "index must be [row, column] within W2, which is 10×10, got [10, 0]"),
    ({"index": [0, -1]}, "index must be [row, column] within W2"),
    ({"index": [0]}, "index must be [row, column]"),
    ({"index": [0.0, 1]}, "index must be [row, column]"),
    ({"index": [True, 1]}, "index must be [row, column]"),
    ({"param": "b2", "index": [0, 1]}, "within b2, which is 10×1"),
    ({"eps": 0}, "eps must be a number from 1e-08 to 1.0, got 0"),
    ({"eps": 2}, "eps must be a number"),
    ({"eps": "0.001"}, "eps must be a number"),
    ({"label": 10}, "label must be an integer digit 0-9"),
    ({"extra": 1}, "unknown field: extra"),
])
def test_bad_nudges_get_a_4xx_message(client, change, message):
    body = {**GOOD, "image": image_of(client.lab), **change}
    status, err = client.post("/api/nudge", body)
    assert 400 <= status < 500 and message in err["error"], err


def test_a_nudge_needs_every_field(client):
    status, err = client.post("/api/nudge", {"image": image_of(client.lab), "label": 3})
    assert status == 400 and err["error"] == "missing fields: param, index, eps"


json_values = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4) | \
    st.lists(st.integers(-3, 12) | st.floats() | st.booleans(), max_size=3)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(param=json_values | st.sampled_from(["W1", "b1", "W2", "b2"]), index=json_values, eps=json_values,
       label=json_values | st.integers(0, 9))
def test_fuzzed_nudges_never_cause_a_server_error(client, param, index, eps, label):
    status, data = client.post("/api/nudge", {"image": [0.5] * 784, "label": label, "param": param,
                                              "index": index, "eps": eps})
    assert status == 200 or (400 <= status < 500 and isinstance(data["error"], str)), (status, data)
    assert "Traceback" not in json.dumps(data)
