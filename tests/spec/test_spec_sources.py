"""Local checkpoint sources are checked on demand (plan time), at the field that names them."""

from __future__ import annotations

from pathlib import Path

from reconciler.spec.loader import load_spec
from reconciler.spec.sources import local_source_problems

TUTORIAL = Path(__file__).resolve().parents[2] / "specs" / "gptj-v5e-2x2.yaml"


def _spec_in(tmp_path, source_path: str):
    text = TUTORIAL.read_text().replace("path: ${GPTJ_CHECKPOINT:-./fine_tuned_pt_checkpoint}", f"path: {source_path}")
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return load_spec(str(path), environ={}), path


def test_a_missing_directory_is_reported_at_its_field(tmp_path):
    spec, path = _spec_in(tmp_path, "./weights")
    line = next(number for number, text in enumerate(path.read_text().splitlines(), 1) if "path: ./weights" in text)
    column = path.read_text().splitlines()[line - 1].index("./weights") + 1
    assert [str(problem) for problem in local_source_problems(spec)] == [
        f"{path}:{line}:{column}: checkpoints.gptj-6b.source.path: local checkpoint directory "
        f"{tmp_path / 'weights'} does not exist"]


def test_a_file_is_not_a_directory(tmp_path):
    (tmp_path / "weights").write_text("not a directory")
    spec, _ = _spec_in(tmp_path, "./weights")
    assert local_source_problems(spec)[0].message.endswith("weights is not a directory")


def test_an_existing_directory_and_gs_sources_pass(tmp_path):
    (tmp_path / "weights").mkdir()
    assert local_source_problems(_spec_in(tmp_path, "./weights")[0]) == []
    assert local_source_problems(_spec_in(tmp_path, "gs://saxctl-demo-sax-data/hf")[0]) == []
