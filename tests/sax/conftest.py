"""The Sax stand-in tests' fixture: a cell of their own (tests/sax/sax_cell.py) in a fresh admin bucket."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sax_cell import SaxCell


@pytest.fixture
def sax_cell(sandbox, unique_name, tmp_path) -> Iterator[SaxCell]:
    bucket = unique_name("sax")
    sandbox.storage_client("sax-tests").create_bucket(bucket)
    cell = SaxCell(sandbox, bucket, tmp_path)
    try:
        yield cell
    finally:
        cell.close()
