"""What `saxctl validate` and `plan` say, and exit with, for a spec that is missing or that fuzzing found crashing."""

from __future__ import annotations

from pathlib import Path

from cli_runner import saxctl

BAD = Path(__file__).parent / "bad"


def test_a_missing_spec_file_says_so_without_a_position_and_exits_1(tmp_path):
    for command in ("validate", "plan", "status", "destroy"):
        ran = saxctl(command, "nope.yaml", cwd=tmp_path)
        assert ran.code == 1, (command, ran.text)  # a usage problem, as in Terraform; an invalid spec exits 3
        assert ran.err.splitlines()[0] == "Error: spec file nope.yaml does not exist", (command, ran.err)
        assert "nope.yaml:1:1" not in ran.text and "invalid spec" not in ran.text and "Traceback" not in ran.text


def test_non_finite_and_huge_numbers_are_spec_errors_not_bugs():
    cases = ["schema-integer-got-nan.yaml", "schema-integer-got-inf.yaml", "schema-integer-too-large.yaml",
             "file-lone-surrogate.yaml"]
    ran = saxctl("validate", *(str(BAD / case) for case in cases))
    assert ran.code == 3, ran.text
    assert "bug in saxctl" not in ran.text and "Traceback" not in ran.text
    assert [line.split(": ", 1)[0].rsplit("/", 1)[1] for line in ran.out.splitlines()] == [
        "schema-integer-got-nan.yaml:16:72", "schema-integer-got-inf.yaml:14:21",
        "schema-integer-too-large.yaml:40:15", "file-lone-surrogate.yaml:6:9"]
