"""conv2d and the pools: values and gradients against torch and by hand, the backward's derivation, errors."""
import numpy as np
import pytest

from tinygrad_edu import ShapeError, Tensor, gradcheck
from tinygrad_edu.nn import functional as F


def _conv_by_loops(x, w, stride, padding):
    """out[n,o,i,j] = Σ_c,p,q xp[n,c,i·s+p,j·s+q]·w[o,c,p,q], written as the definition."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    N, _, H, W = xp.shape
    O, _, kh, kw = w.shape
    Ho, Wo = (H - kh) // stride + 1, (W - kw) // stride + 1
    out = np.zeros((N, O, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3]))
    return out


@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1), (3, 2)])
def test_conv2d_is_the_definition(stride, padding):
    rng = np.random.default_rng(stride)
    x, w = rng.normal(size=(2, 3, 9, 8)), rng.normal(size=(4, 3, 3, 2))
    out = Tensor(x).conv2d(w, stride=stride, padding=padding)
    np.testing.assert_allclose(out.data, _conv_by_loops(x, w, stride, padding), rtol=1e-12, atol=1e-12)


def test_conv2d_backward_is_the_derivation():
    """∂L/∂w is the correlation of x with ∂L/∂out; ∂L/∂x the full convolution of ∂L/∂out with the flipped kernel."""
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(2, 3, 7, 6)), rng.normal(size=(4, 3, 3, 2))
    X, W = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
    out = X.conv2d(W)
    g = rng.normal(size=out.shape)
    out.backward(g)
    # correlation of x (channels as the batch) with g (its batch axis summed): C×N×H×W ⋆ O×N×Ho×Wo -> C×O×kh×kw
    dw = _conv_by_loops(x.transpose(1, 0, 2, 3), g.transpose(1, 0, 2, 3), 1, 0).transpose(1, 0, 2, 3)
    np.testing.assert_allclose(W.grad, dw, rtol=1e-12, atol=1e-12)
    # full convolution: g zero-padded by k−1 (here kh−1 = 2, kw−1 = 1), kernel flipped, in/out swapped
    g_full = np.pad(g, ((0, 0), (0, 0), (2, 2), (1, 1)))
    dx = _conv_by_loops(g_full, w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3), 1, 0)
    np.testing.assert_allclose(X.grad, dx, rtol=1e-12, atol=1e-12)


def test_max_pool2d_is_the_maximum_of_each_window_and_drops_the_rest():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 9, 7))   # 9×7 with 2×2 windows: the last row and column are dropped
    X1 = Tensor(x, requires_grad=True)
    a = X1.max_pool2d(2)
    by_reshape = x[:, :, :8, :6].reshape(2, 3, 4, 2, 3, 2).max(axis=(3, 5))
    c = Tensor(x).max_pool2d(2, (2, 1)).data[..., ::2]   # overlapping windows, every other one is a's
    assert a.shape == (2, 3, 4, 3)
    np.testing.assert_array_equal(a.data, by_reshape)
    np.testing.assert_array_equal(a.data, c)
    means = x[:, :, :8, :6].reshape(2, 3, 4, 2, 3, 2).mean(axis=(3, 5))
    np.testing.assert_allclose(Tensor(x).avg_pool2d(2).data, means)
    a.sum().backward()
    assert X1.grad.sum() == a.size and np.all(X1.grad[:, :, 8, :] == 0) and np.all(X1.grad[:, :, :, 6] == 0)


def test_max_pool2d_ties_share_the_gradient_as_max_does():
    x = np.array([[[[1.0, 1.0], [0.0, 1.0]]]])
    for stride in (None, 1):    # tiling and overlapping windows
        X = Tensor(x, requires_grad=True)
        X.max_pool2d(2, stride).sum().backward()
        np.testing.assert_allclose(X.grad, [[[[1 / 3, 1 / 3], [0, 1 / 3]]]])
        Y = Tensor(x.reshape(4), requires_grad=True)
        Y.max().backward()
        np.testing.assert_allclose(Y.grad, X.grad.reshape(4))


def test_overlapping_windows_add_their_gradients():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    X = Tensor(x, requires_grad=True)
    X.max_pool2d(2, 1).sum().backward()     # the maximum of each window is its bottom-right pixel
    expected = np.zeros((4, 4))
    expected[1:, 1:] = 1
    np.testing.assert_array_equal(X.grad[0, 0], expected)
    Y = Tensor(x, requires_grad=True)
    Y.avg_pool2d(3, 1).sum().backward()     # pixel (u, v) lies in as many 3×3 windows as cover it
    cover = np.array([1, 2, 2, 1])
    np.testing.assert_allclose(Y.grad[0, 0], np.outer(cover, cover) / 9)


def test_functional_conv2d_adds_the_bias_per_channel():
    rng = np.random.default_rng(2)
    x, w, b = rng.normal(size=(2, 2, 5, 5)), rng.normal(size=(3, 2, 3, 3)), np.array([1.0, -2.0, 0.5])
    B = Tensor(b, requires_grad=True)
    out = F.conv2d(Tensor(x), Tensor(w), B, padding=1)
    np.testing.assert_allclose(out.data, _conv_by_loops(x, w, 1, 1) + b[:, None, None], atol=1e-12)
    out.sum().backward()
    np.testing.assert_array_equal(B.grad, [50.0, 50.0, 50.0])   # N·Ho·Wo = 2·5·5 positions per channel


def test_conv2d_keeps_float32_and_the_output_layout_is_a_view():
    x = Tensor(np.ones((2, 3, 6, 6), np.float32), requires_grad=True)
    w = Tensor(np.ones((4, 3, 3, 3), np.float32), requires_grad=True)
    out = x.conv2d(w)
    assert out.dtype == np.float32 and out.shape == (2, 4, 4, 4)
    np.testing.assert_array_equal(out.data, 27.0)
    out.sum().backward()
    assert x.grad.dtype == w.grad.dtype == np.float32
    np.testing.assert_array_equal(w.grad, 2 * 16.0)


# --- errors name the op and the shapes ---------------------------------------------------------------------


def test_conv2d_refuses_bad_shapes_and_arguments():
    x, w = Tensor(np.zeros((1, 3, 5, 5))), Tensor(np.zeros((4, 2, 3, 3)))
    with pytest.raises(ShapeError, match=r"conv2d: weight \(4, 2, 3, 3\) must be out×in×kh×kw with in = the 3 "
                                         r"channels of input \(1, 3, 5, 5\)"):
        x.conv2d(w)
    with pytest.raises(ShapeError, match=r"conv2d: the kernel 8×8 is larger than the padded input 7×7 "
                                         r"\(input \(1, 3, 5, 5\)\)"):
        x.conv2d(np.zeros((1, 3, 8, 8)), padding=1)
    with pytest.raises(ShapeError, match=r"conv2d: the input must be N×C×H×W \(4 axes\), got shape \(3, 5, 5\)"):
        Tensor(np.zeros((3, 5, 5))).conv2d(w)
    with pytest.raises(ValueError, match=r"conv2d: stride must be an integer ≥ 1 or a pair of them, got 0"):
        x.conv2d(np.zeros((4, 3, 3, 3)), stride=0)
    with pytest.raises(ValueError, match=r"conv2d: padding must be an integer ≥ 0 or a pair of them, got \(1, -1\)"):
        x.conv2d(np.zeros((4, 3, 3, 3)), padding=(1, -1))
    with pytest.raises(ShapeError, match=r"conv2d: bias \(3,\) must hold one value per output channel of weight "
                                         r"\(4, 3, 3, 3\), i.e. shape \(4,\)"):
        F.conv2d(x, Tensor(np.zeros((4, 3, 3, 3))), Tensor(np.zeros(3)))


def test_pools_refuse_bad_shapes_and_arguments():
    x = Tensor(np.zeros((1, 1, 3, 4)))
    with pytest.raises(ShapeError, match=r"max_pool2d: the kernel 4×4 is larger than the input 3×4 "
                                         r"\(input \(1, 1, 3, 4\)\)"):
        x.max_pool2d(4)
    with pytest.raises(ValueError, match=r"avg_pool2d: stride must be an integer ≥ 1 or a pair of them, got -1"):
        x.avg_pool2d(2, -1)
    with pytest.raises(ValueError, match=r"max_pool2d: kernel_size must be an integer ≥ 1 or a pair of them, "
                                         r"got \(2, 2, 2\)"):
        x.max_pool2d((2, 2, 2))
    with pytest.raises(ShapeError, match=r"max_pool2d: the input must be N×C×H×W \(4 axes\), got shape \(3, 4\)"):
        Tensor(np.zeros((3, 4))).max_pool2d(2)


# --- against PyTorch ------------------------------------------------------------------------------------------


def test_gradcheck_covers_a_padded_strided_conv_with_bias():
    rng = np.random.default_rng(3)
    x = Tensor(rng.normal(size=(2, 2, 6, 5)), requires_grad=True)
    w = Tensor(rng.normal(size=(3, 2, 3, 2)), requires_grad=True)
    b = Tensor(rng.normal(size=3), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 2)), [x, w, b])


def test_the_worked_example_on_the_page_is_the_one_the_picture_draws():
    """docs/conv.md's worked example and scripts/conv_example.py (its picture) use the same numbers, and the
    picture's gradients are the derivation's."""
    import importlib.util
    import re
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("conv_example", root / "scripts" / "conv_example.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    page = (root / "docs" / "conv.md").read_text(encoding="utf-8")
    for name, value in (("x", script.X), ("w", script.W), ("G", script.G)):
        literal = re.search(rf"^{name} = np\.array\((\[.*?\])\)", page, re.M).group(1)
        assert eval(literal) == value, name
    values = script.example()
    assert values["dw"].tolist() == [[3.0, 7.0], [0.0, 2.0]]
    assert values["dx"].tolist() == [[1.0, -1.0, 0.0], [1.0, 3.0, -2.0], [-2.0, 4.0, 0.0]]
    assert (root / "docs" / "images" / "conv" / "worked-example.png").exists()
