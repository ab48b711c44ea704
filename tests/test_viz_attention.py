"""viz.attention_weights and plot_attention: a GPT block's weights as its forward computes them, and their picture."""
import numpy as np
import pytest

from tinygrad_edu import Tensor, datasets, text, viz
from tinygrad_edu.autograd import no_grad
from tinygrad_edu.models.gpt import GPT

VERSE = "Trăm năm trong cõi người ta,\nChữ tài chữ mệnh khéo là ghét nhau."


@pytest.fixture(scope="module")
def model():
    tok = text.CharTokenizer.from_data(datasets.load_text("kieu"))
    return GPT(tok, n_layer=2, n_head=4, n_embd=32, block_size=64, dtype="float64", seed=0)


def test_the_weights_are_causal_rows_that_sum_to_one(model):
    A = viz.attention_weights(model, model.tokenizer.encode(VERSE), layer=1)
    T = len(VERSE)
    assert A.shape == (4, T, T) and A.dtype == np.float64
    assert np.all(A[:, ~np.tri(T, dtype=bool)] == 0)
    np.testing.assert_allclose(A.sum(axis=-1), 1.0, rtol=0, atol=1e-12)


def test_the_weights_times_the_values_give_the_blocks_own_attention_output(model):
    ids = model.tokenizer.encode(VERSE)
    T, H, C = len(ids), model.n_head, model.n_embd
    A = viz.attention_weights(model, ids, layer=1)
    with no_grad():
        x = model.blocks[0](model.wte(ids[None]) + model.wpe(np.arange(T)))
        block = model.blocks[1]
        h = block.ln_1(x)
        v = block.attn.qkv(h).numpy().reshape(T, 3, H, C // H).transpose(1, 2, 0, 3)[2]
        heads = (A @ v).transpose(1, 0, 2).reshape(1, T, C)
        np.testing.assert_allclose(block.attn.proj(Tensor(heads)).numpy(), block.attn(h).numpy(), rtol=0, atol=1e-12)


def test_mean_distance_is_how_far_back_the_weight_lies():
    T = 3
    last = np.zeros((T, T))
    last[np.arange(T), 0] = 1.0                 # every query looks at the first token: 0, 1, 2 back
    own = np.eye(T)                             # every query looks at itself
    assert viz.mean_distance(np.stack([last, own])).tolist() == [1.0, 0.0]


def test_bad_input_names_the_value(model):
    ids = model.tokenizer.encode("Trăm")
    with pytest.raises(ValueError, match=r"layer must be 0\.\.1 \(the model has 2 blocks\), got 2"):
        viz.attention_weights(model, ids, layer=2)
    with pytest.raises(ValueError, match=r"1-d\), got shape \(1, 4\)"):
        viz.attention_weights(model, ids[None], layer=0)
    with pytest.raises(ValueError, match="block_size 64"):
        viz.attention_weights(model, np.zeros(65, np.int64), layer=0)
    with pytest.raises(ValueError, match=r"T×T for the 3 tokens, got shape \(4, 4\)"):
        viz.plot_attention(np.eye(4), "abc")


def test_the_picture_is_a_png_of_its_size(tmp_path):
    pytest.importorskip("matplotlib")
    path = viz.plot_attention(np.tri(4) / np.arange(1, 5)[:, None], "Kiều", tmp_path / "head.png", title="one head")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    side = round((4 * 0.16 + 2 * 1.2) * 100)
    assert (width, height) == (side, side)
