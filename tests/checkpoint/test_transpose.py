"""The tiled, two-threaded transpose gives exactly numpy's transpose, at any size and tile edge."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.checkpoint.hf_source import SourceTensor


class ArrayReader:
    """The reader protocol over an in-memory array, as the torch reader is over a mapped file."""

    def __init__(self, values: np.ndarray):
        self.values = values

    def read(self, name, index):
        return self.values[index]

    def release(self, name, start_row, stop_row):
        pass

    def span(self, name):
        return 0, self.values.nbytes


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 200), columns=st.integers(1, 2100), data=st.data())
def test_columns_transposed_matches_numpy(rows: int, columns: int, data):
    values = np.random.default_rng(rows * 7919 + columns).standard_normal((rows, columns), dtype=np.float32)
    tensor = SourceTensor("w", Path("w.bin"), values.shape, ArrayReader(values))
    start = data.draw(st.integers(0, columns - 1))
    stop = data.draw(st.integers(start + 1, columns))
    out = np.full((stop - start) * rows + 5, np.nan, np.float32)  # a reused buffer, dirty

    turned = tensor.columns_transposed(slice(start, stop), out)

    np.testing.assert_array_equal(turned, values[:, start:stop].T)
