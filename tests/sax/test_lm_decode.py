"""The sandbox's GPT-J computes HF's logits from the converted checkpoint, and decodes as Sax does: checked against
an independent numpy GPT-J and beam search over the Hugging Face weights."""

from __future__ import annotations

import numpy as np
import pytest

from lm_fixture import TEST_DECODING, TINY_GPTJ
from gptj_numpy_reference import HfGptj, sax_beam_search
from reconciler.sandbox.sax.lm import gptj
from reconciler.sandbox.sax.lm.params import KNOWN, Decoding

EOS = 256  # tiny-gptj's <|endoftext|>


@pytest.fixture(scope="module")
def reference() -> HfGptj:
    return HfGptj(TINY_GPTJ / "safetensors")


def test_converted_checkpoint_computes_hf_logits(tiny_model):
    input_ids = np.load(TINY_GPTJ / "input_ids.npy")
    expected = np.load(TINY_GPTJ / "logits.npy")  # transformers' own forward pass
    for ids, logits in zip(input_ids, expected):
        found = gptj.all_log_probs(tiny_model.weights, ids.astype(np.int32), len(ids), rotary_dim=8)
        shifted = logits - logits.max(-1, keepdims=True)
        np.testing.assert_allclose(found, shifted - np.log(np.exp(shifted).sum(-1, keepdims=True)), atol=1e-4)


def test_gptj_params_decode_as_saxml_says():
    """saxml's gptj.py: BEAM_SIZE 4, TOKENS_PER_BEAM 4, MIN_DECODE_STEPS 30, MAX_DECODE_STEPS 128 ([32, 64, 128] for
    GPTJ4BF16BS32), LENGTH_NORM_ALPHA 0.5, INPUT_SEQ_LEN 1919."""
    for name in ("GPTJ", "GPTJ4BF16BS32"):
        assert KNOWN[f"saxml.server.pax.lm.params.gptj.{name}"].decoding == Decoding(
            beam_size=4, tokens_per_beam=4, min_decode_steps=30, max_decode_steps=128, length_norm_alpha=0.5,
            input_seq_len=1919)


@pytest.mark.parametrize("prompt", ["Hello", "", "A longer prompt, with punctuation; and more words."])
def test_beam_search_matches_the_numpy_reference(tiny_model, reference: HfGptj, prompt: str):
    """4 beams of 4 tokens, EOS barred for the first steps, scores normalised by ((n + 5) / 5) ** 0.5; SOS (= EOS)
    before the prompt: every finished beam token for token, and its score."""
    found = tiny_model.search(prompt)
    expected = sax_beam_search(reference, [EOS, *prompt.encode()], EOS, min_steps=TEST_DECODING.min_decode_steps,
                               max_steps=TEST_DECODING.max_decode_steps)
    assert [list(beam.tokens) for beam in found] == [tokens for tokens, _ in expected]
    np.testing.assert_allclose([beam.score for beam in found], [score for _, score in expected], rtol=1e-4)
    assert [beam.score for beam in found] == sorted((beam.score for beam in found), reverse=True)
    assert all(len(beam.tokens) > TEST_DECODING.min_decode_steps and beam.tokens[-1] == EOS for beam in found)


def test_generate_returns_four_texts_without_the_prompt_or_eos(tiny_model):
    results = tiny_model.generate("Hello")
    beams = tiny_model.search("Hello")
    assert [text for text, _ in results] == [bytes(beam.tokens[:-1]).decode(errors="replace") for beam in beams]
    assert [score for _, score in results] == [beam.score for beam in beams]


def test_score_is_the_suffix_log_prob_after_sos_and_prefix(tiny_model, reference: HfGptj):
    prefix, suffix = b"The cat", b" sat down"
    ids = [EOS, *prefix, *suffix]
    log_probs = reference.log_probs(ids)
    expected = sum(log_probs[t - 1, ids[t]] for t in range(1 + len(prefix), len(ids)))
    assert tiny_model.score(prefix.decode(), suffix.decode()) == pytest.approx(expected, abs=1e-3)
    assert tiny_model.score("", "x") == pytest.approx(reference.log_probs([EOS, ord("x")])[0, ord("x")], abs=1e-4)
