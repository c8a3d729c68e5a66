"""The tiny GPT-J fixture converted once per session, and the language model loaded from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.checkpoint.convert import convert
from reconciler.sandbox.sax.lm import Decoding, DirectoryCheckpoint, load

TINY_GPTJ = Path(__file__).resolve().parents[1] / "fixtures" / "tiny-gptj"  # 257 tokens: 256 bytes + <|endoftext|>
GPTJ = "saxml.server.pax.lm.params.gptj.GPTJ"  # one device
# Sax's GPT-J decoding (4 beams of 4 tokens, length norm alpha 0.5) in fewer steps, so that the numpy reference,
# which recomputes every sequence at every step, takes seconds: EOS barred for 6 steps (Sax: 30), 24 in all (128).
TEST_DECODING = Decoding(min_decode_steps=6, max_decode_steps=24)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("converted") / "checkpoint_00000000"
    convert(TINY_GPTJ, root, vocab_size=257)
    return root


@pytest.fixture(scope="session")
def tiny_model(tiny_checkpoint: Path):
    return load(GPTJ, DirectoryCheckpoint(tiny_checkpoint), device_count=1, decoding=TEST_DECODING)
