"""Attention and the ops a GPT needs: scaled_dot_product_attention, tril/triu, arange, split/chunk, batched @.

Each corner is checked against torch 2.13 on the CPU (what it does was looked up with the installed torch first):
masks of each kind, causal with L ≠ S, fully masked rows, broadcasting, errors. Random shapes, masks and scales
against torch are the hypothesis test below; the registry (opspecs) adds finite differences and float32.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_edu as tg
import tinygrad_edu.nn.functional as F
from tinygrad_edu import ShapeError, Tensor

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _pair(*arrays, grad=True):
    """The arrays as our Tensors and as torch tensors (float64, requiring grad when floating point)."""
    ours = [Tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    theirs = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    return ours, theirs


def _assert_same(out, t_out, ours, theirs, rtol=1e-10):
    """Values, and the gradients of every input for one incoming gradient that tells the elements apart."""
    assert out.shape == tuple(t_out.shape)
    np.testing.assert_allclose(out.data, t_out.detach().numpy(), rtol=rtol, atol=1e-13)
    g = np.linspace(-1, 1, out.size).reshape(out.shape)
    out.backward(g)
    t_out.backward(torch.tensor(g))
    for i, (x, t) in enumerate(zip(ours, theirs)):
        if t.requires_grad:
            np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=rtol, atol=1e-13, err_msg=f"input {i}")


def _qkv(rng, q_shape, k_shape, v_shape):
    return [rng.standard_normal(s) for s in (q_shape, k_shape, v_shape)]


# --- scaled_dot_product_attention: the corners, against torch -------------------------------------------------


@pytest.mark.parametrize("shapes", [((3, 4), (5, 4), (5, 2)), ((2, 3, 4), (2, 5, 4), (2, 5, 6)),
                                    ((2, 1, 3, 4), (1, 2, 5, 4), (1, 2, 5, 3))])
def test_attention_without_a_mask_is_softmax_of_the_scaled_scores_times_value(shapes):
    arrays = _qkv(np.random.default_rng(0), *shapes)
    ours, theirs = _pair(*arrays)
    _assert_same(F.scaled_dot_product_attention(*ours), TF.scaled_dot_product_attention(*theirs), ours, theirs)
    q, k, v = arrays   # and it is the formula, with scale 1/√E
    w = np.exp(q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1]))
    np.testing.assert_allclose(F.scaled_dot_product_attention(*arrays).data, (w / w.sum(-1, keepdims=True)) @ v,
                               rtol=1e-12)


@pytest.mark.parametrize("L,S", [(4, 4), (2, 5), (6, 3)])
def test_is_causal_is_top_left_aligned_for_any_number_of_queries_and_keys(L, S):
    arrays = _qkv(np.random.default_rng(1), (2, L, 3), (2, S, 3), (2, S, 2))
    ours, theirs = _pair(*arrays)
    out = F.scaled_dot_product_attention(*ours, is_causal=True)
    _assert_same(out, TF.scaled_dot_product_attention(*theirs, is_causal=True), ours, theirs)
    # query i sees keys 0..i: the first query's output is the first value row
    np.testing.assert_allclose(out.data[:, 0], arrays[2][:, 0], rtol=1e-14)


@pytest.mark.parametrize("scale", [0.3, 2.0, -0.5, 0.0])
def test_scale_replaces_one_over_the_square_root_of_e(scale):
    arrays = _qkv(np.random.default_rng(2), (2, 3, 4), (2, 5, 4), (2, 5, 2))
    ours, theirs = _pair(*arrays)
    _assert_same(F.scaled_dot_product_attention(*ours, scale=scale),
                 TF.scaled_dot_product_attention(*theirs, scale=scale), ours, theirs)


@pytest.mark.parametrize("mask_shape", [(3, 5), (1, 5), (3, 1), (2, 1, 3, 5), (2, 3, 5), (1, 2, 3, 5)])
def test_a_bool_mask_broadcasts_over_the_leading_dims_and_true_means_may_attend(mask_shape):
    rng = np.random.default_rng(3)
    arrays = _qkv(rng, (2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 6))
    mask = rng.random(mask_shape) < 0.7
    ours, theirs = _pair(*arrays)
    _assert_same(F.scaled_dot_product_attention(*ours, attn_mask=mask),
                 TF.scaled_dot_product_attention(*theirs, attn_mask=torch.tensor(mask)), ours, theirs)


def test_a_float_mask_is_added_to_the_scores_and_differentiated():
    rng = np.random.default_rng(4)
    arrays = _qkv(rng, (2, 3, 4), (2, 5, 4), (2, 5, 6)) + [rng.standard_normal((2, 3, 5))]
    arrays[3][0, 1, 2] = -np.inf
    ours, theirs = _pair(*arrays)
    out = F.scaled_dot_product_attention(*ours[:3], attn_mask=ours[3])
    _assert_same(out, TF.scaled_dot_product_attention(*theirs[:3], attn_mask=theirs[3]), ours, theirs)


def test_a_float32_mask_joins_float64_queries_as_in_torch():
    rng = np.random.default_rng(5)
    arrays = _qkv(rng, (3, 4), (5, 4), (5, 2))
    mask = rng.standard_normal((3, 5)).astype(np.float32)
    ours, theirs = _pair(*arrays)
    out = F.scaled_dot_product_attention(*ours, attn_mask=mask)
    assert out.dtype == np.float64
    _assert_same(out, TF.scaled_dot_product_attention(*theirs, attn_mask=torch.tensor(mask)), ours, theirs)


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_a_fully_masked_row_gives_zeros_and_zero_gradients_not_nan(kind):
    rng = np.random.default_rng(6)
    arrays = _qkv(rng, (2, 3, 4), (2, 5, 4), (2, 5, 6))
    allowed = rng.random((3, 5)) < 0.6
    allowed[:, 0], allowed[1] = True, False   # row 1 sees no key
    mask = allowed if kind == "bool" else np.where(allowed, rng.standard_normal((3, 5)), -np.inf)
    ours, theirs = _pair(*arrays)
    out = F.scaled_dot_product_attention(*ours, attn_mask=mask)
    assert np.array_equal(out.data[:, 1], np.zeros((2, 6)))
    _assert_same(out, TF.scaled_dot_product_attention(*theirs, attn_mask=torch.tensor(mask)), ours, theirs)
    assert np.array_equal(ours[0].grad[:, 1], np.zeros((2, 4)))
    assert all(np.isfinite(x.grad).all() for x in ours)


def test_no_keys_at_all_give_zeros():
    out = F.scaled_dot_product_attention(np.ones((3, 4)), np.ones((0, 4)), np.ones((0, 2)))
    assert np.array_equal(out.data, np.zeros((3, 2)))


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_a_mask_with_is_causal_applies_both(kind):
    """torch 2.13 refuses attn_mask together with is_causal=True; here both hold, so the twin is torch with the
    causal mask folded into attn_mask by hand."""
    rng = np.random.default_rng(7)
    arrays = _qkv(rng, (2, 4, 3), (2, 6, 3), (2, 6, 2))
    causal = np.tri(4, 6, dtype=bool)
    mask = rng.random((4, 6)) < 0.6 if kind == "bool" else rng.standard_normal((4, 6))
    ours, theirs = _pair(*arrays)
    both = mask & causal if kind == "bool" else np.where(causal, mask, -np.inf)
    out = F.scaled_dot_product_attention(*ours, attn_mask=mask, is_causal=True)
    _assert_same(out, TF.scaled_dot_product_attention(*theirs, attn_mask=torch.tensor(both)), ours, theirs)
    with pytest.raises(RuntimeError, match="should not be set when is_causal=True"):   # torch's own refusal
        TF.scaled_dot_product_attention(*theirs, attn_mask=torch.tensor(mask), is_causal=True)


def test_attention_is_differentiable_twice_as_composed_ops():
    """The first derivative is a graph of ops too, so its own gradient exists and matches torch's."""
    arrays = _qkv(np.random.default_rng(8), (2, 3, 4), (2, 3, 4), (2, 3, 2))
    out = F.scaled_dot_product_attention(*[Tensor(a) for a in arrays], is_causal=True)
    assert out.grad_fn is None   # nothing requires grad: no graph
    q = Tensor(arrays[0], requires_grad=True)
    out = F.scaled_dot_product_attention(q, arrays[1], arrays[2], is_causal=True)
    names = set()
    stack = [out.grad_fn]
    while stack:
        fn = stack.pop()
        names.add(fn.name)
        stack += [p.grad_fn for p in fn.parents if p.grad_fn is not None]
    assert names <= {"mul", "matmul", "transpose", "where", "softmax", "add"}


# --- dropout: by statistics -----------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.1, 0.3, 0.6])
def test_dropout_zeroes_a_share_p_of_the_weights_and_scales_the_rest_by_one_over_one_minus_p(p):
    """With value = the identity, the output is the weights themselves: L = 2000 queries over S = 10 keys with
    equal scores have weights 1/10, each zeroed with probability p, the rest 1/(10(1 − p))."""
    L, S = 2000, 10
    out = F.scaled_dot_product_attention(np.zeros((L, 4)), np.zeros((S, 4)), np.eye(S), dropout_p=p, seed=0).data
    dropped = (out == 0).mean()
    assert abs(dropped - p) < 4 * np.sqrt(p * (1 - p) / out.size)   # 4 standard errors
    np.testing.assert_allclose(out[out != 0], 1 / (S * (1 - p)), rtol=1e-12)
    assert abs(out.sum(axis=1).mean() - 1) < 0.02   # the expected weight sum stays 1


def test_dropout_is_reproducible_with_a_seed_and_off_at_zero():
    args = (np.ones((5, 3)), np.ones((4, 3)), np.eye(4))
    a = F.scaled_dot_product_attention(*args, dropout_p=0.5, seed=3).data
    assert np.array_equal(a, F.scaled_dot_product_attention(*args, dropout_p=0.5, seed=3).data)
    assert not np.array_equal(a, F.scaled_dot_product_attention(*args, dropout_p=0.5, seed=4).data)
    np.testing.assert_allclose(F.scaled_dot_product_attention(*args, dropout_p=0.0).data, np.full((5, 4), 0.25))
    assert np.array_equal(F.scaled_dot_product_attention(*args, dropout_p=1.0).data, np.zeros((5, 4)))


def test_dropout_gradient_flows_only_through_the_kept_weights():
    rng = np.random.default_rng(9)
    q = Tensor(rng.standard_normal((6, 3)), requires_grad=True)
    v = Tensor(rng.standard_normal((4, 2)), requires_grad=True)
    k = rng.standard_normal((4, 3))
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5, seed=1)
    out.sum().backward()
    # weights W' (dropped, scaled): ∂L/∂v = W'ᵀ·1, so a key dropped for every query gets no gradient
    w = np.exp(q.data @ k.T / np.sqrt(3))
    w /= w.sum(-1, keepdims=True)
    kept = F.dropout(Tensor(w), 0.5, seed=1).data
    np.testing.assert_allclose(v.grad, kept.T @ np.ones((6, 2)), rtol=1e-12)


# --- bad input --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mask,error,words", [
    (np.ones((3, 4), bool), ShapeError, r"attn_mask of shape \(3, 4\) must broadcast to the attention weights' "
                                        r"shape \(2, 3, 5\)"),
    (np.ones((4, 2, 3, 5), bool), ShapeError, r"attn_mask of shape \(4, 2, 3, 5\) must broadcast .* \(2, 3, 5\)"),
    (np.ones(5, bool), ShapeError, r"at least those 2 dims \(as torch\): a mask of S keys is shape \(1, S\)"),
    (np.array(True), ShapeError, r"attn_mask of shape \(\) must broadcast"),
    (np.ones((3, 5), np.int64), TypeError, "attn_mask must be bool .* got dtype int64"),
    (np.ones((3, 5), np.uint8), TypeError, "got dtype uint8"),
    (np.ones((3, 5), np.float16), TypeError, "float32 or the query's float64"),
])
def test_a_mask_of_the_wrong_shape_or_dtype_is_refused_naming_it(mask, error, words):
    q, k, v = _qkv(np.random.default_rng(0), (2, 3, 4), (2, 5, 4), (2, 5, 6))
    with pytest.raises(error, match=words):
        F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def test_torch_refuses_those_masks_too():
    """Masks of under 2 dims torch takes with 3-d queries and fails on with 4-d ones (IndexError: it asks the
    mask for its dim −2); here they are refused whatever the queries."""
    q, k, v = (torch.tensor(a) for a in _qkv(np.random.default_rng(0), (2, 3, 4), (2, 5, 4), (2, 5, 6)))
    for mask in (torch.ones(3, 4, dtype=torch.bool), torch.ones(3, 5, dtype=torch.int64),
                 torch.ones(4, 2, 3, 5) > 0, torch.ones(3, 5, dtype=torch.float16)):
        with pytest.raises(RuntimeError):
            TF.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    q4, k4, v4 = (t[None] for t in (q, k, v))
    for mask in (torch.ones(5) > 0, torch.tensor(True)):
        with pytest.raises(IndexError):
            TF.scaled_dot_product_attention(q4, k4, v4, attn_mask=mask)


@pytest.mark.parametrize("shapes,words", [
    (((3, 4), (5, 3), (5, 2)), r"query \(3, 4\) and key \(5, 3\) must have the same last dim E, got 4 and 3"),
    (((3, 4), (5, 4), (6, 2)), r"key \(5, 4\) and value \(6, 2\) must have the same number of keys S"),
    (((2, 3, 4), (3, 5, 4), (3, 5, 2)), r"leading dims of query \(2, 3, 4\), key \(3, 5, 4\)"),
    (((4,), (5, 4), (5, 2)), r"query must have at least 2 dims .* got shape \(4,\)"),
])
def test_operands_of_mismatched_shapes_are_refused_naming_them(shapes, words):
    with pytest.raises(ShapeError, match=words):
        F.scaled_dot_product_attention(*_qkv(np.random.default_rng(0), *shapes))


def test_operands_of_other_dtypes_and_bad_dropout_are_refused():
    q = np.ones((3, 4))
    with pytest.raises(TypeError, match="query, key and value must have one dtype, got float32, float64"):
        F.scaled_dot_product_attention(q.astype(np.float32), q, q)
    with pytest.raises(TypeError, match="query must be floating point, got dtype int64"):
        F.scaled_dot_product_attention(np.ones((3, 4), np.int64), q, q)
    with pytest.raises(ValueError, match=r"dropout_p must be a probability in \[0, 1\], got 1.5"):
        F.scaled_dot_product_attention(q, q, q, dropout_p=1.5)


# --- tril, triu, arange, split, chunk, permute, transpose, batched @ ------------------------------------------


@pytest.mark.parametrize("diagonal", [-2, -1, 0, 1, 3])
@pytest.mark.parametrize("shape", [(3, 4), (4, 3), (2, 3, 3)])
def test_tril_and_triu_match_torch_with_their_gradients(shape, diagonal):
    x = np.random.default_rng(0).standard_normal(shape)
    for ours_f, theirs_f in ((tg.tril, torch.tril), (tg.triu, torch.triu)):
        ours, theirs = _pair(x)
        _assert_same(ours_f(ours[0], diagonal=diagonal), theirs_f(theirs[0], diagonal=diagonal), ours, theirs)
        ours, theirs = _pair(x)
        method = ours_f.__name__
        _assert_same(getattr(ours[0], method)(diagonal), getattr(theirs[0], method)(diagonal), ours, theirs)


def test_tril_keeps_integer_and_bool_dtypes_and_refuses_vectors():
    assert tg.tril(np.ones((3, 3), bool)).dtype == np.bool_
    assert np.array_equal(tg.triu(np.arange(9).reshape(3, 3), 1).data, torch.triu(torch.arange(9).reshape(3, 3), 1))
    with pytest.raises(ShapeError, match=r"tril: the input must have at least 2 dims .* got shape \(3,\)"):
        tg.tril(np.ones(3))
    with pytest.raises(TypeError, match="triu: diagonal must be an integer, got 0.5"):
        tg.triu(np.ones((2, 2)), 0.5)


@pytest.mark.parametrize("args", [(5,), (0,), (1, 5), (1, 5, 2), (5, 1, -1), (-3, 4, 3), (0.5, 3), (1, 2.5, 0.5),
                                  (0, 1, 0.1), (2, -1.5, -0.25), (1, 1), (3.0,), (2, 5.0)])
def test_arange_matches_torch_in_values_and_dtype(args):
    ours, theirs = tg.arange(*args), torch.arange(*args)
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
    assert np.array_equal(ours.data, theirs.numpy())


def test_arange_takes_a_dtype_and_refuses_bad_bounds():
    assert tg.arange(4, dtype=np.float64).dtype == np.float64
    assert np.array_equal(tg.arange(0, 1, 0.1, dtype=np.float64).data,
                          torch.arange(0, 1, 0.1, dtype=torch.float64).numpy())
    assert tg.arange(3.0, requires_grad=True).requires_grad
    with pytest.raises(ValueError, match="arange: step must be nonzero"):
        tg.arange(1, 5, 0)
    with pytest.raises(ValueError, match="start=1, end=5 are inconsistent with the sign of step=-1"):
        tg.arange(1, 5, -1)
    with pytest.raises(ValueError, match="arange: end must be a finite real number, got inf"):
        tg.arange(float("inf"))


@pytest.mark.parametrize("how", [2, 3, 5, 7, [1, 4], [0, 5], [2, 2, 1]])
@pytest.mark.parametrize("dim", [1, -1])
def test_split_matches_torch_with_gradients(how, dim):
    x = np.random.default_rng(0).standard_normal((2, 5, 3) if dim == 1 else (2, 3, 5))
    ours, theirs = _pair(x)
    pieces, t_pieces = ours[0].split(how, dim), theirs[0].split(how, dim)
    assert [p.shape for p in pieces] == [tuple(t.shape) for t in t_pieces]
    out = tg.cat([p * (i + 1) for i, p in enumerate(pieces)], dim=dim)   # each piece weighted differently
    t_out = torch.cat([p * (i + 1) for i, p in enumerate(t_pieces)], dim=dim)
    _assert_same(out, t_out, ours, theirs)


@pytest.mark.parametrize("n,chunks", [(5, 4), (6, 4), (4, 3), (3, 3), (2, 5), (0, 3), (7, 1)])
def test_chunk_gives_torch_sizes(n, chunks):
    x = np.zeros((2, n))
    assert [p.shape for p in Tensor(x).chunk(chunks, dim=1)] == [tuple(t.shape) for t in
                                                                torch.tensor(x).chunk(chunks, dim=1)]


def test_split_and_chunk_refuse_bad_sizes_naming_them():
    x = Tensor(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"split: the sizes \[1, 2\] must be ≥ 0 and add up to 5, the size of dim 1"):
        x.split([1, 2], dim=1)
    with pytest.raises(ValueError, match="split: split_size must be ≥ 1 .* got 0 for dim 1 of size 5"):
        x.split(0, dim=1)
    with pytest.raises(ValueError, match="chunk: chunks must be an integer ≥ 1, got 0"):
        x.chunk(0)
    with pytest.raises(ShapeError, match=r"split: axis 2 is out of range for shape \(2, 5\)"):
        x.split(2, dim=2)


def test_permute_and_two_dim_transpose_match_torch():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    for f in (lambda t: t.permute(0, 2, 1, 3), lambda t: t.transpose(1, 2), lambda t: t.transpose(-2, -1),
              lambda t: t.transpose(0, -1)):
        ours, theirs = _pair(x)
        _assert_same(f(ours[0]), f(theirs[0]), ours, theirs, rtol=0)


@pytest.mark.parametrize("a_shape,b_shape", [((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (1, 3, 4, 5)),
                                             ((3, 4), (2, 2, 4, 5)), ((2, 2, 3, 4), (4, 5)), ((4,), (2, 4, 5)),
                                             ((2, 3, 4), (4,)), ((5, 1, 3, 4), (2, 4, 2))])
def test_batched_matmul_matches_torch_over_broadcast_batch_dims(a_shape, b_shape):
    rng = np.random.default_rng(0)
    ours, theirs = _pair(rng.standard_normal(a_shape), rng.standard_normal(b_shape))
    _assert_same(ours[0] @ ours[1], torch.matmul(*theirs), ours, theirs, rtol=1e-12)


# --- hypothesis: attention against torch over shapes, masks and scales ------------------------------------------


@st.composite
def attention_cases(draw):
    """(query, key, value, mask kind, mask, is_causal, scale), every one valid: leading dims that broadcast, a
    mask that broadcasts to …×L×S, at least one key allowed somewhere (fully masked rows are allowed too)."""
    L, S, E, Ev = (draw(st.integers(1, 5)) for _ in range(4))
    batch = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    k_batch = tuple(1 if draw(st.booleans()) else n for n in batch)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    q, k, v = rng.standard_normal((*batch, L, E)), rng.standard_normal((*k_batch, S, E)), rng.standard_normal(
        (*k_batch, S, Ev))
    kind = draw(st.sampled_from(["none", "causal", "bool", "float", "bool+causal", "float+causal"]))
    full = (*batch, L, S)
    mask_shape = tuple(1 if draw(st.booleans()) else n for n in full)[draw(st.integers(0, len(batch))):]
    if kind.startswith("bool"):
        mask = rng.random(mask_shape) < draw(st.sampled_from([0.3, 0.7, 1.0]))
    elif kind.startswith("float"):
        mask = rng.standard_normal(mask_shape) * 2
        mask[rng.random(mask_shape) < draw(st.sampled_from([0.0, 0.3]))] = -np.inf
    else:
        mask = None
    scale = draw(st.sampled_from([None, 0.25, 1.0, 3.0]))
    return q, k, v, kind, mask, kind.endswith("causal"), scale


@settings(max_examples=150)
@given(case=attention_cases())
def test_attention_matches_torch_in_values_and_gradients_of_q_k_v(case):
    q, k, v, kind, mask, causal, scale = case
    ours, theirs = _pair(q, k, v)
    out = F.scaled_dot_product_attention(*ours, attn_mask=mask, is_causal=causal, scale=scale)
    t_mask = None if mask is None else torch.tensor(mask)
    if causal and mask is not None:   # torch refuses both at once: its twin gets them folded into one mask
        c = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
        t_mask = t_mask & c if mask.dtype == bool else t_mask.masked_fill(~c, -np.inf)
        causal_arg = False
    else:
        causal_arg = causal
    t_out = TF.scaled_dot_product_attention(*theirs, attn_mask=t_mask, is_causal=causal_arg, scale=scale)
    _assert_same(out, t_out, ours, theirs)
