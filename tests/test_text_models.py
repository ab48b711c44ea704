"""The character models: makemore's examples, the metric in nats per character, the bigram identity, and that each
model learns the names (not just runs)."""
import numpy as np
import pytest

from tinygrad_edu import models, nn, text
from tinygrad_edu.models.text import Bigram, CharMLP, CharRNN
from tinygrad_edu.training.config import ConfigError
from tinygrad_edu.training.text import (
    TextConfig,
    count_model,
    count_nll,
    loss,
    nll,
    train_text,
)


@pytest.fixture(scope="module")
def names():
    return text.load_text("names")


@pytest.fixture(scope="module")
def tok(names):
    return text.CharTokenizer.from_data(names)


def makemore_dataset(words, stoi, block_size):
    """makemore part 2's build_dataset, written out: each word's characters and its end, from '...' on."""
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + ".":
            ix = stoi.get(ch, 0)
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    return np.array(X), np.array(Y)


def test_examples_are_makemores_build_dataset(names, tok):
    X, y = text.sequences(names.train[:200], tok).examples(3)
    X_mm, y_mm = makemore_dataset(names.train[:200], tok.ids, 3)
    assert np.array_equal(X, X_mm) and np.array_equal(y, y_mm)
    assert len(y) == sum(len(w) + 1 for w in names.train[:200])


def test_running_text_is_cut_in_non_overlapping_windows_of_the_context_plus_one():
    tok = text.CharTokenizer("abcd")
    rows = text.sequences("abcdbcadba", tok, block_size=3)        # windows abcd, bcad; "ba" is left over
    assert rows.inputs.tolist() == [[1, 2, 3], [2, 3, 1]] and rows.targets.tolist() == [[2, 3, 4], [3, 1, 4]]
    assert rows.predictions == 6
    X, y = rows.examples(2)    # a fixed context of 2 pads the in-window prefix with the boundary token
    assert X.tolist() == [[0, 1], [1, 2], [2, 3], [0, 2], [2, 3], [3, 1]] and y.tolist() == [2, 3, 4, 3, 1, 4]
    with pytest.raises(text.TextError, match="shorter than one window of 4"):
        text.sequences("abc", tok, block_size=3)


def test_the_metric_is_the_mean_nll_per_predicted_character(tok):
    rows = text.sequences(["ab", "a"], tok)
    model = Bigram(tok, dtype="float64")
    model.W.data[...] = np.random.default_rng(0).standard_normal(model.W.shape)
    logp = model.W.data - np.log(np.exp(model.W.data).sum(axis=1, keepdims=True))
    pairs = [(0, 1), (1, 2), (2, 0), (0, 1), (1, 0)]      # .a ab b. and .a a.
    assert nll(model, rows) == pytest.approx(-np.mean([logp[a, b] for a, b in pairs]), rel=1e-12)
    assert rows.predictions == 5


def test_the_count_model_and_the_trained_bigram_agree_within_a_hundredth(names, tok):
    """The first rung: gradient descent on a V×V table of logits reaches the smoothed counts' loss."""
    train, val = (text.sequences(s, tok) for s in (names.train, names.val))
    P = count_model(train, tok.vocab_size)
    assert np.allclose(P.sum(axis=1), 1) and count_nll(P, val) == pytest.approx(2.453, abs=0.002)
    result = train_text(TextConfig(model="bigram"), names)   # the default: 200 steps
    assert result.count_val_loss == pytest.approx(count_nll(P, val))
    assert abs(result.val_loss - result.count_val_loss) < 0.01
    assert result.val_loss <= 2.46


def test_the_mlp_learns_the_names(names):
    result = train_text(TextConfig(model="mlp", steps=2000, seed=0), names)
    assert result.val_loss < 2.4 and result.history[-1]["loss"] < result.history[0]["loss"]


def test_the_rnn_learns_the_names(names):
    result = train_text(TextConfig(model="rnn", steps=300, seed=0), names)
    assert result.val_loss < 2.4


@pytest.mark.parametrize("build", [lambda t: Bigram(t), lambda t: CharMLP(t, 3, 4, 8, seed=1),
                                   lambda t: CharRNN(t, 5, 6, seed=1)])
def test_a_text_model_saves_and_loads_with_its_tokenizer(tmp_path, tok, names, build):
    model = build(tok)
    rows = text.sequences(names.val[:50], tok)
    before = nll(model, rows)
    path = nn.save(model, tmp_path / "m.npz")
    again = nn.load(path)
    assert type(again) is type(model) and again.tokenizer.ids == tok.ids
    assert nll(again, rows) == before
    assert models.KINDS[model.kind] is type(model)


def test_a_file_whose_tokenizer_is_broken_is_refused(tmp_path, tok):
    from tinygrad_edu import checkpoint
    model = CharMLP(tok, 3, 4, 8)
    arch = {**model.architecture(), "tokenizer": {"chars": 7}}
    path = checkpoint.save(tmp_path / "bad.npz", model.state_dict(), arch)
    with pytest.raises(checkpoint.CheckpointError, match="CharMLP: the architecture's tokenizer is not one"):
        nn.load(path)


def test_the_loss_of_a_batch_is_cross_entropy_of_its_targets(tok, names):
    model = CharMLP(tok, 3, 4, 8, seed=0, dtype="float64")
    X, y = text.sequences(names.train[:20], tok).examples(3)
    logits = model(X).data
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert loss(model, (X, y)).item() == pytest.approx(-logp[np.arange(len(y)), y].mean(), rel=1e-12)


@pytest.mark.parametrize("config, message", [
    (dict(model="transformer"), "unknown text model 'transformer'; choose one of bigram, mlp, rnn, gpt"),
    (dict(model="mlp", layers=2), "--layers applies only to the gpt model, not mlp"),
    (dict(model="gpt", embedding=130), "the embedding 130 is not divisible by the heads 4"),
    (dict(model="gpt", corpus="poems"), "no GPT recipe for 'poems'"),
    (dict(model="bigram", context=3), "--context does not apply to the bigram model"),
    (dict(model="mlp", steps=0), "steps must be a positive integer, got 0"),
    (dict(model="rnn", lr=-1.0), "lr must be a positive number, got -1.0"),
])
def test_a_text_config_refuses_what_does_not_apply(config, message):
    with pytest.raises(ConfigError, match=message):
        TextConfig(**config)


def trained_bigram(tok, names):
    """A bigram whose table is the smoothed counts' log: the count model as a net."""
    model = Bigram(tok, dtype="float64")
    model.W.data[...] = np.log(count_model(text.sequences(names.train, tok), tok.vocab_size))
    return model


def test_sampling_is_reproducible_and_starts_with_the_prompt(tok, names):
    from tinygrad_edu.models.text import sample
    model = trained_bigram(tok, names)
    first = sample(model, "words", num=20, seed=3)
    assert first == sample(model, "words", num=20, seed=3) and first != sample(model, "words", num=20, seed=4)
    assert all(w and set(w) <= set(tok.chars) for w in first)
    assert all(w.startswith("mi") for w in sample(model, "words", num=5, prompt="mi", seed=0))
    # top_k=1 is greedy: from the boundary, the most likely first letter, then its most likely successor, ...
    P = count_model(text.sequences(names.train, tok), tok.vocab_size)
    greedy, c = "", 0
    while (c := int(P[c].argmax())) != 0 and len(greedy) < 20:
        greedy += tok.chars[c - 1]
    assert sample(model, "words", num=2, top_k=1, seed=0) == [greedy, greedy]


def test_running_text_samples_hold_the_lines_asked_for():
    from tinygrad_edu.models.text import sample
    kieu = text.load_text("kieu")
    tok = text.CharTokenizer.from_data(kieu)
    model = CharRNN(tok, 4, 8, seed=0)
    for s in sample(model, "text", num=3, lines=2, seed=0, max_chars=10_000):
        assert s.count("\n") == 2 and s.endswith("\n")
    assert all(len(s) == 15 for s in sample(model, "text", num=2, max_chars=15, seed=1))


@pytest.mark.parametrize("options, message", [
    (dict(temperature=0), "temperature must be a positive number, got 0"),
    (dict(top_k=0), "top_k must be a positive integer, got 0"),
    (dict(prompt="Zed"), r"the character 'Z' \(U\+005A\) at position 0"),
])
def test_sampling_refuses_bad_options_by_name(tok, options, message):
    from tinygrad_edu.models.text import sample
    with pytest.raises((ValueError, text.TextError), match=message):
        sample(Bigram(tok), "words", **options)


def test_a_text_run_going_wrong_is_warned_of_once_by_the_mnist_runs_rules(names, monkeypatch):
    import io

    from tinygrad_edu.training import text as text_training
    from tinygrad_edu.training.progress import Progress, divergence, divergence_advice
    # the loss rule alone applies (text entries have no accuracy): a loss above 2 × its first at 3 points
    rising = [{"step": s, "loss": v} for s, v in ((1, 1.0), (2, 4.0), (3, 5.0), (4, 6.0))]
    assert divergence(rising[:3], 1) is None and "above 2 × its first value" in divergence(rising, 1)
    seen = []
    monkeypatch.setattr(text_training, "divergence", lambda history, n: seen.append(len(history)) or "it rose")
    out = io.StringIO()
    result = train_text(TextConfig(model="bigram", steps=4, log_every=1), names, Progress(stream=out, quiet=True))
    assert result.warning == divergence_advice("it rose", 50.0)
    assert out.getvalue() == f"warning: {result.warning}\n" and seen == [1]    # once, and never asked again
