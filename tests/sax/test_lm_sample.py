"""The demo's path: `saxctl sandbox sample-checkpoint`, `saxctl checkpoint convert`, then the model server's load
of GPTJ4BF16BS32 on 4 devices answers with four texts of the sample's own vocabulary."""

from __future__ import annotations

import json
from pathlib import Path

from cli_runner import saxctl
from reconciler.sandbox.sax.lm import Decoding, DirectoryCheckpoint, load


def test_sample_checkpoint_converts_loads_and_generates(tmp_path: Path):
    source, root = tmp_path / "gptj", tmp_path / "converted" / "checkpoint_00000000"
    written = saxctl("sandbox", "sample-checkpoint", str(source))
    assert written.code == 0, written.text
    vocab = json.loads((source / "vocab.json").read_text())
    converted = saxctl("checkpoint", "convert", "--from", str(source), "--to", str(root))
    assert converted.code == 0, converted.text
    assert "vocabulary padded from 50400 to 50401 rows" in converted.text

    model = load("saxml.server.pax.lm.params.gptj.GPTJ4BF16BS32", DirectoryCheckpoint(root), 4,
                 decoding=Decoding(min_decode_steps=4, max_decode_steps=12))
    assert (model.dims.vocab_size, model.vocabulary.size) == (50401, len(vocab))
    results = model.generate("The model server")
    assert len(results) == 4
    assert [score for _, score in results] == sorted((score for _, score in results), reverse=True)
    pieces = {token.replace("Ġ", " ") for token in vocab}
    for text, _ in results:  # the sample never predicts the rows past its vocabulary, so each beam says something
        assert text and not text.startswith("The model server")
    assert any(piece in results[0][0] for piece in pieces if len(piece) > 2)
