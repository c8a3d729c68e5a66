"""What the language model tests share: the tiny GPT-J fixture, the params class they load, a short decoding."""

from __future__ import annotations

from pathlib import Path

from reconciler.sandbox.sax.lm import Decoding

TINY_GPTJ = Path(__file__).resolve().parents[1] / "fixtures" / "tiny-gptj"  # 257 tokens: 256 bytes + <|endoftext|>
GPTJ = "saxml.server.pax.lm.params.gptj.GPTJ"  # one device
# Sax's GPT-J decoding (4 beams of 4 tokens, length norm alpha 0.5) in fewer steps, so that the numpy reference,
# which recomputes every sequence at every step, takes seconds: EOS barred for 6 steps (Sax: 30), 24 in all (128).
TEST_DECODING = Decoding(min_decode_steps=6, max_decode_steps=24)
