"""GPT-2's byte-level BPE over the vocab.json and merges.txt the converter carries beside the checkpoint.

Sax's GPTJ params read a fixed vocabulary (VOCABULARY_PATH, class GPT2BPEVocabulary: HF `tokenizers`); the sandbox
reads the files that came with the checkpoint's source instead, so the sample checkpoint can bring its own small
vocabulary. Decoding is GPT2BPEVocabulary's: `decode(ids, skip_special_tokens=True)`, where an id the vocabulary
does not have (GPT-J's padding rows 50257..50400) is dropped, as `tokenizers` drops it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from tokenizers import Tokenizer, decoders, models, pre_tokenizers

from reconciler.checkpoint.manifest import TOKENIZER_DIR
from reconciler.sandbox.sax.lm.checkpoint_reader import CheckpointReader, LoadError, read_file

END_OF_TEXT = "<|endoftext|>"  # GPT-2's SOS and EOS alike (GPTJ params: SOS_ID = EOS_ID = 50256)


@dataclass(frozen=True, slots=True)
class Vocabulary:
    tokenizer: Tokenizer
    eos_id: int

    @property
    def size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)


def byte_level_bpe(vocab: dict[str, int], merges: list[tuple[str, str]]) -> Vocabulary:
    """GPT-2's tokenizer: byte-level pre-tokenization without a prefix space, BPE, <|endoftext|> special."""
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([END_OF_TEXT])
    return Vocabulary(tokenizer, vocab[END_OF_TEXT])


def read_vocabulary(checkpoint: CheckpointReader) -> Vocabulary:
    vocab_path, merges_path = f"{TOKENIZER_DIR}/vocab.json", f"{TOKENIZER_DIR}/merges.txt"
    try:
        vocab = json.loads(read_file(checkpoint, vocab_path))
        merges_text = read_file(checkpoint, merges_path).decode()
    except LoadError as error:
        raise LoadError(f"no tokenizer: {error} (the converter copies vocab.json and merges.txt from the model "
                        "directory; convert it again)") from None
    except ValueError as error:
        raise LoadError(f"{vocab_path} or {merges_path} is not readable ({error})") from None
    if not isinstance(vocab, dict) or not all(isinstance(i, int) for i in vocab.values()):
        raise LoadError(f"{vocab_path} must map tokens to ids")
    if END_OF_TEXT not in vocab:
        raise LoadError(f"{vocab_path} has no {END_OF_TEXT}, GPT-J's start and end of sequence")
    merges = []
    for number, line in enumerate(merges_text.splitlines(), 1):
        if line.startswith("#version") or not line.strip():
            continue
        pair = line.split(" ")
        if len(pair) != 2:
            raise LoadError(f"{merges_path}:{number}: expected two tokens separated by a space, found {line!r}")
        merges.append((pair[0], pair[1]))
    try:
        return byte_level_bpe(vocab, merges)
    except Exception as error:  # tokenizers raises its own exception type for a merge of unknown tokens
        raise LoadError(f"{vocab_path} and {merges_path} do not make a BPE tokenizer ({error})") from None
