"""The lab's drawing-to-MNIST conversion: area resampling, the 20×20 box, centring by centre of mass."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_edu.lab.digits import area_matrix, mnist_style, resample


def test_area_matrix_averages_by_overlap():
    assert np.allclose(area_matrix(5, 2), [[0.4, 0.4, 0.2, 0, 0], [0, 0, 0.2, 0.4, 0.4]])
    assert np.allclose(area_matrix(3, 6), np.repeat(np.eye(3), 2, axis=0))   # upsampling repeats
    assert np.allclose(area_matrix(280, 20).sum(axis=1), 1)


def test_resample_keeps_the_mean():
    rng = np.random.default_rng(0)
    a = rng.random((200, 120))
    assert np.isclose(resample(a, (20, 12)).mean(), a.mean())
    assert np.allclose(resample(np.ones((7, 3)), (20, 9)), 1)


def test_no_ink_gives_zeros():
    assert np.array_equal(mnist_style(np.zeros((280, 280))), np.zeros((28, 28)))


def test_a_bar_is_fitted_into_20_by_4_and_centred():
    a = np.zeros((280, 280))
    a[30:230, 10:50] = 1          # 200 tall, 40 wide, far from the centre
    m = mnist_style(a)
    rows, cols = np.nonzero(m)
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (20, 4)
    assert np.allclose(m[rows.min():rows.max() + 1, cols.min():cols.max() + 1], 1)
    assert (rows.min(), cols.min()) == (4, 12)      # centre of mass (13.5, 13.5)


def test_centre_of_mass_not_box_centre():
    a = np.zeros((100, 100))
    a[:, 0:40] = 1                # a heavy left part
    a[:, 40:100] = 0.2            # a light right part
    m = mnist_style(a)
    r, c = np.indices(m.shape)
    com = (r * m).sum() / m.sum(), (c * m).sum() / m.sum()
    assert abs(com[0] - 13.5) <= 0.5 and abs(com[1] - 13.5) <= 0.5
    assert np.nonzero(m.sum(axis=0))[0].min() == 8    # the box's centre would put it at 4


@given(st.integers(1, 60), st.integers(1, 60), st.integers(0, 60), st.integers(0, 60), st.integers(0, 2**32 - 1))
def test_any_blob_fits_the_box_in_range(h, w, top, left, seed):
    a = np.zeros((120, 120))
    a[top:top + h, left:left + w] = np.random.default_rng(seed).uniform(0.05, 1, (h, w))
    m = mnist_style(a)
    assert m.shape == (28, 28) and m.min() >= 0 and m.max() <= 1
    rows, cols = np.nonzero(m)
    h2, w2 = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
    assert max(h2, w2) == 20 and min(h2, w2) == max(1, round(min(h, w) * 20 / max(h, w)))
    assert np.isclose(m.sum(), a.sum() * (h2 / h) * (w2 / w))    # area averaging keeps the mean
