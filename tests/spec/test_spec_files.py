"""Files that cannot be specs at all: each is one clean problem, never a traceback."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from reconciler.errors import SpecError
from reconciler.spec.document import SpecFileError
from reconciler.spec.loader import check_files, load_spec

_NOBODY = 65534
MINIMAL = """apiVersion: saxctl/v1
kind: SaxDeployment
metadata: {name: demo}
project: {id: saxctl-demo, region: us-central1}
buckets:
  admin: {name: saxctl-demo-sax-admin, location: US}
  data: {name: saxctl-demo-sax-data, location: US}
"""


def test_a_missing_file_is_no_spec_problem_but_a_usage_error_without_a_position(tmp_path):
    path = str(tmp_path / "nope.yaml")
    with pytest.raises(SpecFileError) as raised:
        check_files([path])
    assert raised.value.message == f"spec file {path} does not exist"
    assert raised.value.exit_code == 1 and raised.value.hint is None
    with pytest.raises(SpecFileError):
        load_spec(path)


def test_a_misspelt_file_name_suggests_the_file_beside_it(tmp_path):
    (tmp_path / "gptj-v5e-2x2.yaml").write_text(MINIMAL)
    with pytest.raises(SpecFileError) as raised:
        load_spec(str(tmp_path / "gptj-v5e-2x2.yml"))
    assert raised.value.hint == f"Did you mean {tmp_path / 'gptj-v5e-2x2.yaml'}?"


def test_every_missing_file_is_named_before_any_file_is_checked(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL.replace("kind: SaxDeployment", "kind: Sax"))
    with pytest.raises(SpecFileError) as raised:
        check_files([str(tmp_path / "a.yaml"), str(bad), str(tmp_path / "b.yaml")])
    assert raised.value.message.splitlines() == [f"spec file {tmp_path / 'a.yaml'} does not exist",
                                                 f"spec file {tmp_path / 'b.yaml'} does not exist"]


def test_a_directory_is_a_usage_error_naming_a_spec_in_it(tmp_path):
    (tmp_path / "demo.yaml").write_text(MINIMAL)
    with pytest.raises(SpecFileError) as raised:
        check_files([str(tmp_path)])
    assert raised.value.message == f"{tmp_path} is a directory, not a spec file"
    assert raised.value.hint == f"Name one of its files, e.g. {tmp_path / 'demo.yaml'}"


def test_an_unreadable_file_is_a_usage_error():
    with tempfile.TemporaryDirectory() as directory:
        os.chmod(directory, 0o711)  # another user may pass through it to the file, as in a home directory
        readable, path = Path(directory) / "demo.yaml", Path(directory) / "secret.yaml"
        for each in (readable, path):
            each.write_text(MINIMAL)
        path.chmod(0)
        # Also imports what check_files imports on its way, before a child without root can no longer read them.
        assert _refusal(readable) == "read"
        assert refusal_without_root(path) == f"cannot read the spec file {path}: permission denied"


def refusal_without_root(path: Path) -> str:
    """check_files' message for path, as a user without root's right to read any file sees it: run as such a user
    (nobody) in a forked child when the tests run as root, as they do in containers."""
    if os.geteuid() != 0:
        return _refusal(path)
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # the child: never back into pytest
        try:
            os.setgroups([])
            os.setgid(_NOBODY)
            os.setuid(_NOBODY)
            os.write(writing, _refusal(path).encode())
        except BaseException as error:  # said to the parent, whose assertion shows it
            os.write(writing, f"raised {error!r}".encode())
        finally:
            os._exit(0)
    os.close(writing)
    os.waitpid(child, 0)
    with os.fdopen(reading) as said:
        return said.read()


def _refusal(path: Path) -> str:
    try:
        check_files([str(path)])
    except SpecFileError as error:
        return error.message
    return "read"


def test_a_zero_byte_file_is_empty(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_bytes(b"")
    with pytest.raises(SpecError) as raised:
        load_spec(str(path))
    assert [problem.message for problem in raised.value.problems] == [
        "the file is empty: a spec needs at least apiVersion, kind, metadata, project and buckets"]


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())
    assert load_spec(str(path)).name == "demo"


def test_the_file_is_named_as_given(tmp_path, monkeypatch):
    (tmp_path / "spec.yaml").write_text(MINIMAL.replace("id: saxctl-demo", "id: x"))
    monkeypatch.chdir(tmp_path)
    assert str(check_files(["spec.yaml"])[0]).startswith("spec.yaml:4:15: project.id: ")


def test_good_and_bad_files_together(tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(MINIMAL)
    bad.write_text(MINIMAL.replace("kind: SaxDeployment", "kind: Sax"))
    problems = check_files([str(good), str(bad)])
    assert [(problem.file, problem.field) for problem in problems] == [(str(bad), "kind")]


def test_an_alias_that_contains_itself_is_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text(MINIMAL + "checkpoints: &loop\n  again: *loop\n")
    problems = check_files([str(path)])
    assert [(problem.field, problem.message) for problem in problems][0] == (
        "checkpoints.again", "an alias refers to a node that contains it")


def test_anchors_and_aliases_are_followed(tmp_path):
    path = tmp_path / "alias.yaml"
    path.write_text(MINIMAL.replace("location: US}\n  data: {name: saxctl-demo-sax-data, location: US}",
                                    "location: &where US}\n  data: {name: saxctl-demo-sax-data, location: *where}"))
    assert load_spec(str(path)).buckets.data.location == "US"
