"""Load a params class's model from a converted checkpoint, and answer Sax's Generate and Score with it."""

from __future__ import annotations

import logging
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np

from reconciler.checkpoint.layout import PAX_PREFIX
from reconciler.sandbox import paths
from reconciler.sandbox.sax.lm import gptj
from reconciler.sandbox.sax.lm.beam_search import Candidates, Finished, beam_search
from reconciler.sandbox.sax.lm.checkpoint_reader import CheckpointReader, LoadError, read_manifest
from reconciler.sandbox.sax.lm.params import KNOWN, Decoding, ParamsClass
from reconciler.sandbox.sax.lm.vocabulary import Vocabulary, read_vocabulary

log = logging.getLogger(__name__)

GPTJ_ROTARY_DIM = 64  # saxml's GPTJ params; a checkpoint's manifest may say otherwise (the small sample's is 8)


class LanguageModel:
    """One loaded GPT-J. Requests run one at a time (Sax batches up to 32; the sandbox serves them in turn)."""

    def __init__(self, params: ParamsClass, dims: gptj.Dims, weights: dict, vocabulary: Vocabulary,
                 decoding: Decoding):
        self.params, self.dims, self.weights, self.vocabulary, self.decoding = (
            params, dims, weights, vocabulary, decoding)
        self._lock = threading.Lock()

    def _prompt_ids(self, text: str) -> list[int]:
        """SOS, then the text's tokens, keeping the left part of a prompt longer than input_seq_len (SLICE_LEFT)."""
        return [self.vocabulary.eos_id, *self.vocabulary.encode(text)][: self.decoding.input_seq_len]

    def _padded(self, ids: list[int]) -> jnp.ndarray:
        return jnp.asarray(np.pad(np.asarray(ids, np.int32), (0, self.decoding.bucket(len(ids)) - len(ids))))

    def generate(self, text: str) -> list[tuple[str, float]]:
        """Sax's GPT-J decode: beam search, best first, each (text without the prompt, length-normalised score)."""
        return [(self.vocabulary.decode(list(beam.tokens)), beam.score) for beam in self.search(text)]

    def search(self, text: str) -> list[Finished]:
        """The beam search's finished hypotheses for a prompt, best first: their tokens and scores."""
        decoding, eos_id = self.decoding, self.vocabulary.eos_id
        static = {"rotary_dim": self.dims.rotary_dim, "top_k": decoding.tokens_per_beam}
        ids = self._prompt_ids(text)
        with self._lock:
            found, keys, values = gptj.prompt_pass(
                self.weights, self._padded(ids), len(ids), eos_id, decoding.min_decode_steps <= 0, **static,
                cache_len=decoding.bucket(len(ids)) + decoding.max_decode_steps, beams=decoding.beam_size)
            cache = [keys, values]

            def extend(parents: np.ndarray, new_ids: np.ndarray, step: int) -> Candidates:
                found, *cache[:] = gptj.extend_step(
                    self.weights, *cache, jnp.asarray(parents), jnp.asarray(new_ids), len(ids) + step, eos_id,
                    step + 1 >= decoding.min_decode_steps, **static)
                return Candidates(*(np.asarray(part) for part in found))

            first = Candidates(*(np.asarray(part) for part in found))
            return beam_search(first, extend, decoding, eos_id)

    def score(self, prefix: str, suffix: str) -> float:
        """Sax's Score: the log-prob of suffix's tokens after SOS and prefix's (the final EOS not counted)."""
        prefix_ids = self._prompt_ids(prefix)
        ids = (prefix_ids + self.vocabulary.encode(suffix))[: self.decoding.input_seq_len]
        with self._lock:
            log_probs = np.asarray(gptj.all_log_probs(self.weights, self._padded(ids), len(ids),
                                                      rotary_dim=self.dims.rotary_dim))
        positions = np.arange(len(prefix_ids), len(ids))
        return float(log_probs[positions - 1, np.asarray(ids)[positions]].sum())


def load(model_path: str, checkpoint: CheckpointReader, device_count: int, decoding: Decoding | None = None,
         warm_up: bool = True) -> LanguageModel:
    """Read the converted checkpoint and its tokenizer; LoadError with the reason for anything it cannot serve.

    decoding: the params class's own unless given (tests shorten max_decode_steps). warm_up: decode an empty prompt
    before returning, so that the jit compiles happen in the load (as Sax compiles while loading), not in the first
    request.
    """
    _use_compilation_cache()
    params = KNOWN.get(model_path)
    if params is None:
        raise LoadError(f"{model_path} is not a params class the sandbox model server knows "
                        f"(it knows {', '.join(sorted(KNOWN))})")
    if params.devices != device_count:
        raise LoadError(f"{model_path} needs a serving mesh of {params.devices} devices; this server has "
                        f"{device_count}")
    if params.architecture != "gptj":
        raise LoadError(f"{model_path} is a {params.architecture} model: the sandbox model server runs GPT-J only")
    manifest = read_manifest(checkpoint)
    layers = {name.split(".")[4] for name in manifest.get("arrays", {})
              if name.startswith(f"{PAX_PREFIX}transformer.x_layers_")}
    if not layers:
        raise LoadError("the checkpoint's manifest lists no transformer layers")
    vocabulary = read_vocabulary(checkpoint)  # first: what a conversion by an older saxctl lacks
    dims = gptj.read_dims(checkpoint, len(layers), manifest.get("rotary_dim") or GPTJ_ROTARY_DIM)
    if vocabulary.size > dims.vocab_size:
        raise LoadError(f"the tokenizer has {vocabulary.size} tokens, the model's embedding only "
                        f"{dims.vocab_size} rows")
    weights = gptj.read_weights(checkpoint, dims)
    model = LanguageModel(params, dims, weights, vocabulary, decoding or params.decoding)
    started = time.monotonic()
    if warm_up:
        model.generate("")
    log.info("loaded %s: %d layers, model dims %d, %d heads, vocabulary %d (tokenizer %d); warmed up in %.1f s",
             model_path, dims.num_layers, dims.model_dims, dims.num_heads, dims.vocab_size, vocabulary.size,
             time.monotonic() - started)
    return model


def _use_compilation_cache() -> None:
    """Keep XLA's compiles across model server restarts: they are most of a load on a busy CPU (measured on 2
    shared cores: the sample's load 16.8 s without the cache, 5.1 s with it). JAX_COMPILATION_CACHE_DIR wins."""
    if jax.config.jax_compilation_cache_dir is None:
        jax.config.update("jax_compilation_cache_dir", str(paths.jax_cache_dir()))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
