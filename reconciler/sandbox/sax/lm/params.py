"""The Sax params classes the sandbox model server knows: the devices each needs, and how the GPT-J ones decode.

Read in github:google/saxml (saxml/server/pax/lm/params/gptj.py, lm_cloud.py, template.py at eb93f3e). A model
server advertises a class only when its serving mesh can be built, i.e. when the JAX device count is exactly the
mesh's size (servable_model_params.can_serve_on); the chip name plays no part.
"""

from __future__ import annotations

from dataclasses import dataclass

GPTJ_MODULE = "saxml.server.pax.lm.params.gptj"
LM_CLOUD_MODULE = "saxml.server.pax.lm.params.lm_cloud"


@dataclass(frozen=True, slots=True)
class Decoding:
    """Sax's beam search settings of a params class (template.py's BeamSearchHParams, praxis/beam_search.py)."""

    beam_size: int = 4
    tokens_per_beam: int = 4
    min_decode_steps: int = 30  # EOS cannot end a hypothesis before this many generated tokens
    max_decode_steps: int = 128
    length_norm_alpha: float = 0.5  # score = sum of log-probs / ((n + 5) / 5) ** alpha
    input_seq_len: int = 1919  # the prompt's tokens, SOS included; longer prompts keep their left part

    def bucket(self, length: int) -> int:
        """The padded prompt length compiled for: the next power of two from 64, at most input_seq_len. Sax pads to
        its BUCKET_KEYS (GPTJ4BF16BS32: 512, 1024, 1919), which changes no result; small buckets keep a CPU fast."""
        return min(max(64, 1 << (length - 1).bit_length()), self.input_seq_len)


@dataclass(frozen=True, slots=True)
class ParamsClass:
    model_path: str
    devices: int  # the serving mesh's size
    architecture: str  # "gptj" is the only one the sandbox runs
    decoding: Decoding = Decoding()


# GPTJ keeps ICI_MESH_SHAPE [1, 1, 1]; GPTJ4BF16BS32's serving mesh is [1, 1, 1, 1, 4], with MAX_DECODE_STEPS
# [32, 64, 128] (one beam search runs them in turn: 128 in all). Both decode alike. The LLaMA classes are listed so
# that a server advertises what Sax's would; the sandbox cannot run them.
KNOWN = {
    params.model_path: params
    for params in (
        ParamsClass(f"{GPTJ_MODULE}.GPTJ", 1, "gptj"),
        ParamsClass(f"{GPTJ_MODULE}.GPTJ4BF16BS32", 4, "gptj"),
        ParamsClass(f"{LM_CLOUD_MODULE}.LLaMA7B", 1, "llama"),
        ParamsClass(f"{LM_CLOUD_MODULE}.LLaMA7BTPUv5e4", 4, "llama"),
        ParamsClass(f"{LM_CLOUD_MODULE}.LLaMA7BTPUv5e8", 8, "llama"),
        ParamsClass(f"{LM_CLOUD_MODULE}.LLaMA7BTPUv5e16", 16, "llama"),
    )
}


def servable_model_paths(device_count: int) -> list[str]:
    """The known params classes a model server with this many JAX devices advertises (GPTJ4BF16BS32 needs 4)."""
    return sorted(path for path, params in KNOWN.items() if params.devices == device_count)
