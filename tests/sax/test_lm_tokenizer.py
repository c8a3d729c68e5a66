"""The GPT-2 byte-level BPE: the fixture's byte vocabulary, the sample's trained one, and the converter carrying
the files from the model directory into the checkpoint, where the model server reads them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lm_fixture import TINY_GPTJ
from reconciler.checkpoint.convert import convert
from reconciler.checkpoint.manifest import load_manifest, save_manifest
from reconciler.checkpoint.verify import verify_local
from reconciler.errors import SaxctlError
from reconciler.sandbox.sample_checkpoint import write_sample_tokenizer
from reconciler.sandbox.sax.lm import DirectoryCheckpoint
from reconciler.sandbox.sax.lm.vocabulary import read_vocabulary

TEXT = "Hello, wörld! The model answers <|endoftext|> with four texts.\n"


def test_fixture_vocabulary_is_bytes_and_end_of_text(tiny_checkpoint: Path):
    vocabulary = read_vocabulary(DirectoryCheckpoint(tiny_checkpoint))
    assert (vocabulary.size, vocabulary.eos_id) == (257, 256)
    ids = vocabulary.encode(TEXT)
    assert ids == [*b"Hello, w\xc3\xb6rld! The model answers ", 256, *b" with four texts.\n"]
    assert vocabulary.decode(ids) == TEXT.replace("<|endoftext|>", "")  # special tokens skipped, as Sax does


def test_ids_past_the_vocabulary_are_dropped(tiny_checkpoint: Path):
    """GPT-J's rows 50257..50400 have no token: `tokenizers` (Sax's GPT2BPEVocabulary) leaves them out."""
    vocabulary = read_vocabulary(DirectoryCheckpoint(tiny_checkpoint))
    assert vocabulary.decode([72, 300, 105, 50300, 256, 33]) == "Hi!"


def test_sample_vocabulary_is_trained_the_same_every_time(tmp_path: Path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    assert write_sample_tokenizer(first) == write_sample_tokenizer(second)
    for name in ("vocab.json", "merges.txt"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    shutil.copytree(first, tmp_path / "checkpoint" / "tokenizer")
    vocabulary = read_vocabulary(DirectoryCheckpoint(tmp_path / "checkpoint"))
    ids = vocabulary.encode(TEXT)
    assert len(ids) < len(TEXT.encode()) - 10  # merges learned from the sample text shorten common words
    assert vocabulary.decode(ids) == TEXT.replace("<|endoftext|>", "")


def test_converter_carries_the_tokenizer_and_verifies_it(tiny_checkpoint: Path):
    manifest = load_manifest(tiny_checkpoint)
    for name in ("vocab.json", "merges.txt"):
        assert (tiny_checkpoint / "tokenizer" / name).read_bytes() == (TINY_GPTJ / name).read_bytes()
        assert f"tokenizer/{name}" in manifest.files
    assert manifest.rotary_dim == 8


def test_verify_fails_without_the_tokenizer(tiny_checkpoint: Path, tmp_path: Path):
    copy = tmp_path / "checkpoint_00000000"
    shutil.copytree(tiny_checkpoint, copy)
    verify_local(copy)
    (copy / "tokenizer" / "merges.txt").unlink()
    with pytest.raises(SaxctlError, match="tokenizer/merges.txt: missing or changed since conversion"):
        verify_local(copy)


def test_source_without_vocab_json_is_refused(tmp_path: Path):
    source = tmp_path / "gptj"
    shutil.copytree(TINY_GPTJ / "safetensors", source)
    (source / "vocab.json").unlink()
    with pytest.raises(SaxctlError, match=r"vocab.json: missing; the model server tokenizes with"):
        convert(source, tmp_path / "checkpoint_00000000", vocab_size=257)
    assert not (tmp_path / "checkpoint_00000000").exists()


def test_verify_fails_for_a_checkpoint_converted_without_the_tokenizer(tiny_checkpoint: Path, tmp_path: Path):
    """A conversion by a saxctl from before the tokenizer was carried: its manifest lists no tokenizer files."""
    copy = tmp_path / "checkpoint_00000000"
    shutil.copytree(tiny_checkpoint, copy)
    manifest = load_manifest(copy)
    manifest.files = {name: info for name, info in manifest.files.items() if not name.startswith("tokenizer/")}
    save_manifest(copy, manifest)
    with pytest.raises(SaxctlError, match="no tokenizer/ .vocab.json, merges.txt.: converted by a saxctl that did "
                                          "not carry the tokenizer; convert it again"):
        verify_local(copy)
