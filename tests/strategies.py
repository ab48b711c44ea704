"""Hypothesis side of the op registry: a chooser that draws with hypothesis, so failing examples shrink."""
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


class HypothesisChooser:
    """The chooser protocol of tinygrad_edu.opspecs, drawing from a hypothesis `data` object."""

    def __init__(self, data):
        self.data = data

    def integers(self, lo, hi):
        return self.data.draw(st.integers(lo, hi))

    def floats(self, shape, lo, hi):
        elements = st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)
        return self.data.draw(hnp.arrays(np.float64, shape, elements=elements))

    def sample(self, options):
        return self.data.draw(st.sampled_from(options))
