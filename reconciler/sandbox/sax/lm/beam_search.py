"""Sax's beam search (praxis/beam_search.py, early_exit off), step by step over a model's candidates.

Each step, every live hypothesis offers two things: ending now (its score plus the log-prob of EOS, divided by
the length norm ((n + 5) / 5) ** alpha, n the generated tokens with that EOS), which competes for the `beam_size`
finished slots; and its `tokens_per_beam` best next tokens, of which the best `beam_size` overall (EOS excluded)
become the next live hypotheses. The search runs all max_decode_steps (no early exit) and returns the finished
slots, best first. Ties go to the lower index, as jax.lax.top_k breaks them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from reconciler.sandbox.sax.lm.params import Decoding

PENALTY = np.float32(1e9)  # praxis's "very unlikely" for the initial beams and for EOS among the live tokens


@dataclass(frozen=True, slots=True)
class Candidates:
    """Per live beam [B, K]: its best tokens and their log-probs; [B]: the log-prob of EOS now."""

    values: np.ndarray
    ids: np.ndarray
    eos: np.ndarray


@dataclass(frozen=True, slots=True)
class Finished:
    tokens: tuple[int, ...]  # the generated tokens, the final EOS included
    score: float  # length-normalised


# extend(parents [B], ids [B], step) → the candidates after each beam's new token (beam b continues parents[b])
Extend = Callable[[np.ndarray, np.ndarray, int], Candidates]


def top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest of a 1-d array, largest first, the lower index first among equals."""
    return np.argsort(-values, kind="stable")[:k]


def length_norm(generated: int, alpha: float) -> np.float32:
    return np.float32(((generated + 5.0) / 5.0) ** alpha)


def beam_search(first: Candidates, extend: Extend, decoding: Decoding, eos_id: int) -> list[Finished]:
    """first: the candidates after the prompt, one identical row per beam."""
    beams, per_beam = decoding.beam_size, decoding.tokens_per_beam
    hyp_scores = -PENALTY * np.arange(beams, dtype=np.float32)  # only the first beam is live at the start
    hyp_tokens: list[tuple[int, ...]] = [()] * beams
    finished = [Finished((), float(-PENALTY))] * beams
    found = first
    for step in range(decoding.max_decode_steps):
        norm = length_norm(step + 1, decoding.length_norm_alpha)
        # praxis starts the EOS scores at -1e9 and keeps the larger: a penalised beam ends no lower than that
        ended = [Finished(tokens + (eos_id,), float(max(-PENALTY, score + np.float32(eos)) / norm))
                 for tokens, score, eos in zip(hyp_tokens, hyp_scores, found.eos)]
        pool = finished + ended
        finished = [pool[i] for i in top_k(np.array([f.score for f in pool]), beams)]

        totals = (found.values.astype(np.float32) + hyp_scores[:, None]
                  - PENALTY * (found.ids == eos_id)).reshape(-1)
        chosen = top_k(totals, beams)
        parents, new_ids = chosen // per_beam, found.ids.reshape(-1)[chosen]
        hyp_scores = totals[chosen]
        hyp_tokens = [hyp_tokens[parent] + (int(token),) for parent, token in zip(parents, new_ids)]
        if step + 1 < decoding.max_decode_steps:
            found = extend(parents, new_ids, step)
    return finished
