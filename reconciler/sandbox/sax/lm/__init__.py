"""The language model the sandbox model server serves: GPT-J in JAX from a converted checkpoint, Sax's decoding."""

from reconciler.sandbox.sax.lm.checkpoint_reader import CheckpointReader, DirectoryCheckpoint, LoadError
from reconciler.sandbox.sax.lm.model import LanguageModel, load
from reconciler.sandbox.sax.lm.params import Decoding, servable_model_paths

__all__ = ["CheckpointReader", "Decoding", "DirectoryCheckpoint", "LanguageModel", "LoadError", "load",
           "servable_model_paths"]
