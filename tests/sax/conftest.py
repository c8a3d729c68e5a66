"""The Sax tests' fixtures: a cell of stand-ins in a fresh admin bucket (tests/sax/sax_cell.py); the tiny GPT-J
fixture converted once per session, and the language model loaded from it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lm_fixture import GPTJ, TEST_DECODING, TINY_GPTJ
from sax_cell import SaxCell

from reconciler.checkpoint.convert import convert
from reconciler.sandbox.sax.lm import DirectoryCheckpoint, load


@pytest.fixture
def sax_cell(sandbox, unique_name, tmp_path) -> Iterator[SaxCell]:
    bucket = unique_name("sax")
    sandbox.storage_client("sax-tests").create_bucket(bucket)
    cell = SaxCell(sandbox, bucket, tmp_path)
    try:
        yield cell
    finally:
        cell.close()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("converted") / "checkpoint_00000000"
    convert(TINY_GPTJ, root, vocab_size=257)
    return root


@pytest.fixture(scope="session")
def tiny_model(tiny_checkpoint: Path):
    return load(GPTJ, DirectoryCheckpoint(tiny_checkpoint), device_count=1, decoding=TEST_DECODING)
