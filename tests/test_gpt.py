"""The GPT: its tied head, its window and ids checked by name, the key/value cache giving the same tokens as
recomputing, exactness against PyTorch, saving and loading, CausalSelfAttention's errors, and that it learns."""
import runpy
from pathlib import Path

import numpy as np
import pytest

from tinygrad_edu import models, nn, text
from tinygrad_edu.models.gpt import GPT
from tinygrad_edu.nn import functional as F
from tinygrad_edu.training.text import TextConfig, train_text

TOKENIZER = text.CharTokenizer("abcdefgh \n")


def small(**kw):
    arch = dict(n_layer=2, n_head=2, n_embd=16, block_size=8) | kw
    return GPT(TOKENIZER, **arch, dtype=np.float64, seed=0)


def test_the_tied_head_is_the_token_embedding_s_one_parameter():
    model = small()
    assert model.head.weight is model.wte.weight
    names = [n for n, _ in model.named_parameters()]
    assert "wte.weight" in names and "head.weight" not in names
    assert len(names) == len(set(id(p) for p in model.parameters()))
    assert list(model.state_dict()) == names          # no buffers; wte.weight listed once
    untied = small(tie_weights=False)
    assert untied.head.weight is not untied.wte.weight and "head.weight" in untied.state_dict()
    shapes = GPT.shapes(TOKENIZER.vocab_size, 2, 2, 16, 8, dtype="float64")   # from the specs, nothing allocated
    assert list(shapes.items()) == [(k, (v.shape, str(v.dtype))) for k, v in model.state_dict().items()]


def test_gpt2_init_scales_the_residual_projections_by_one_over_root_two_layers():
    model = GPT(TOKENIZER, n_layer=8, n_head=2, n_embd=64, block_size=8, seed=1)
    std = {n: float(p.data.std()) for n, p in model.named_parameters()}
    assert std["blocks.0.mlp.0.weight"] == pytest.approx(0.02, rel=0.05)
    assert std["blocks.3.attn.proj.weight"] == pytest.approx(0.02 / 4, rel=0.1)    # √(2·8) = 4
    assert std["blocks.7.mlp.2.weight"] == pytest.approx(0.02 / 4, rel=0.05)
    assert np.all(model.state_dict()["ln_f.weight"] == 1)


def test_more_positions_than_the_block_size_are_refused_naming_both():
    model = small()
    with pytest.raises(ValueError, match="9 positions are more than the block_size 8"):
        model(np.zeros((1, 9), np.int64))


@pytest.mark.parametrize("bad, message", [
    (-1, r"token id -1 at position \(0, 2\) is outside the vocabulary 0..10"),
    (11, r"token id 11 at position \(0, 2\) is outside the vocabulary 0..10"),
])
def test_token_ids_outside_the_vocabulary_are_refused_by_value_and_position(bad, message):
    ids = np.array([[1, 2, bad, 3]])
    with pytest.raises(ValueError, match=message):
        small()(ids)
    with pytest.raises(ValueError, match=message):
        small().generate(ids, 3, seed=0)


def test_ids_that_are_not_an_integer_matrix_are_refused():
    with pytest.raises(ValueError, match=r"idx must be an N×T array of token ids \(integers\), got float64"):
        small()(np.zeros((1, 3)))


def test_a_head_count_that_does_not_divide_the_embedding_is_refused_naming_both():
    with pytest.raises(ValueError, match="n_embd 30 is not divisible by n_head 4"):
        GPT(TOKENIZER, n_layer=1, n_head=4, n_embd=30, block_size=8)
    with pytest.raises(ValueError, match="n_embd 30 is not divisible by n_head 4"):
        nn.CausalSelfAttention(30, 4)


def test_causal_self_attention_checks_its_input_shape():
    attn = nn.CausalSelfAttention(16, 2, seed=0)
    with pytest.raises(Exception, match=r"input must be \(N, T, 16\), got \(2, 5\)"):
        attn(nn.Parameter(np.zeros((2, 5))))


def test_a_position_sees_only_the_positions_before_it():
    """Changing the last token changes no earlier position's logits; changing the first changes them all."""
    model = small()
    ids = np.array([[1, 2, 3, 4, 5, 6]])
    base = model(ids).data
    later = ids.copy()
    later[0, -1] = 7
    assert np.array_equal(model(later).data[:, :-1], base[:, :-1])
    earlier = ids.copy()
    earlier[0, 0] = 7
    assert not np.any(np.all(np.isclose(model(earlier).data, base), axis=-1))


def test_cached_and_uncached_generation_write_the_same_tokens_past_three_windows():
    """3 × block_size new tokens: the cache serves the first window, then the window slides (recomputed)."""
    model = GPT(TOKENIZER, n_layer=2, n_head=2, n_embd=16, block_size=8, seed=3)
    prompt = np.array([[1, 2], [3, 4]])
    cached = model.generate(prompt, 24, temperature=1.0, seed=7)
    plain = model.generate(prompt, 24, temperature=1.0, seed=7, use_cache=False)
    assert cached.shape == (2, 26) and np.array_equal(cached, plain)
    assert np.array_equal(cached[:, :2], prompt)


def test_the_cache_gives_the_logits_of_the_whole_window():
    model = small()
    ids = np.array([[1, 2, 3, 4, 5]])
    decoder = model.decoder()
    for t in range(1, 6):
        np.testing.assert_allclose(decoder.next_logits(ids[:, :t]), model(ids[:, :t]).data[:, -1], rtol=1e-12,
                                   atol=1e-14)


def test_generate_refuses_a_negative_count():
    with pytest.raises(ValueError, match="max_new_tokens must be an integer ≥ 0, got -1"):
        small().generate(np.array([[1]]), -1)


def test_the_gpt_matches_pytorch_in_loss_gradients_and_an_adamw_step(capsys):
    """examples/port_to_pytorch.py: the same weights in both libraries, float64, to 1e-10 relative."""
    pytest.importorskip("torch")
    script = Path(__file__).parents[1] / "examples" / "port_to_pytorch.py"
    worst = runpy.run_path(str(script))["compare_gpt"]()
    out = " ".join(capsys.readouterr().out.split())
    assert worst <= 1e-10
    for line in ("∂L/∂wte.weight (132, 32)", "∂L/∂blocks.1.attn.qkv.weight (96, 32)", "ln_f.weight after AdamW"):
        assert line in out, line


def test_a_gpt_saves_and_loads_with_its_architecture(tmp_path):
    model = small(tie_weights=False, bias=True)
    path = tmp_path / "gpt.npz"
    nn.save(model, path)
    back = models.load(path)
    assert isinstance(back, GPT) and (back.n_layer, back.n_head, back.n_embd, back.block_size) == (2, 2, 16, 8)
    assert not back.tie_weights and back.bias
    ids = np.array([[1, 2, 3]])
    assert np.array_equal(back(ids).data, model(ids).data)


def test_dropout_is_used_in_training_and_not_in_eval():
    model = small(dropout=0.5)
    ids = np.array([[1, 2, 3, 4]])
    model.train()
    assert not np.array_equal(model(ids).data, model(ids).data)
    model.eval()
    assert np.array_equal(model(ids).data, model(ids).data)


def test_the_gpt_learns_the_names():
    """300 steps of a tiny GPT (about 2 s) bring the names' val loss below 2.5 nats (the uniform model's is
    log 27 ≈ 3.3; the run reaches about 2.43)."""
    data = text.load_text("names")
    config = TextConfig(model="gpt", corpus="names", steps=300, layers=1, heads=2, embedding=32, batch_size=32,
                        warmup=20, seed=0)
    result = train_text(config, data)
    uniform = np.log(text.CharTokenizer.from_data(data).vocab_size)
    assert result.val_loss < 2.5 < uniform
    assert result.history[-1]["loss"] < result.history[0]["loss"]


def test_the_training_loss_of_a_batch_is_the_cross_entropy_of_its_next_characters():
    model = small()
    x = np.array([[1, 2, 3, 4]])
    y = np.array([[2, 3, 4, 5]])
    logits = model(x)
    expected = -np.mean([np.log(np.exp(row - row.max())[t] / np.exp(row - row.max()).sum())
                         for row, t in zip(logits.data[0], y[0])])
    assert F.cross_entropy(logits.reshape(-1, TOKENIZER.vocab_size), y.reshape(-1)).item() == pytest.approx(
        expected, rel=1e-12)


def test_train_and_sample_a_gpt_from_the_command_line(tmp_path):
    """train --data kieu --model gpt with the options that shape it, then sample: a prompt with characters Truyện
    Kiều never has is refused naming them all, and --metre scores the couplets."""
    import subprocess
    import sys

    def run(*argv):
        return subprocess.run([sys.executable, "-m", "tinygrad_edu", *argv], capture_output=True, text=True,
                              timeout=300, cwd=tmp_path)
    trained = run("train", "--data", "kieu", "--model", "gpt", "--steps", "5", "--layers", "1", "--heads", "2",
                  "--embedding", "16", "--block-size", "16", "--save", "k.npz")
    assert trained.returncode == 0, trained.stderr
    assert "training gpt (1 layers, 2 heads, embedding 16, block 16, dropout 0.0;" in trained.stderr
    model = models.load(tmp_path / "k.npz")
    assert isinstance(model, GPT) and model.block_size == 16
    refused = run("sample", "--weights", "k.npz", "--prompt", "Zürich§")
    assert refused.returncode == 2 and refused.stderr.strip() == (
        "tinygrad-edu sample: error: --prompt: 3 characters of 'Zürich§' are not in the tokenizer's vocabulary "
        "(the training text never had them): 'Z' (U+005A), 'ü' (U+00FC), '§' (U+00A7); the first at position 0")
    sampled = run("sample", "--weights", "k.npz", "--num", "3", "--lines", "2", "--seed", "0", "--prompt", "Trăm")
    assert sampled.returncode == 0 and sampled.stdout.startswith("Trăm")
    assert len(sampled.stdout.strip().split("\n\n")) == 3
    metre = run("sample", "--weights", "k.npz", "--num", "3", "--lines", "2", "--seed", "0", "--metre")
    assert metre.returncode == 0 and "of 3 couplets" in metre.stderr + metre.stdout
    heads = run("train", "--data", "kieu", "--model", "gpt", "--heads", "3")
    assert heads.returncode == 2 and "the embedding 128 is not divisible by the heads 3" in heads.stderr


def test_a_sequential_holding_causal_self_attention_saves_and_loads(tmp_path):
    model = nn.Sequential(nn.Linear(4, 8, seed=0), nn.CausalSelfAttention(8, 2, bias=False, seed=1))
    nn.save(model, tmp_path / "attn.npz")
    back = nn.load(tmp_path / "attn.npz")
    x = nn.Parameter(np.random.default_rng(0).standard_normal((2, 5, 4)).astype(np.float32))
    assert back[1].n_head == 2 and back[1].qkv.bias is None
    assert np.array_equal(back(x).data, model(x).data)
