"""Every bad spec under tests/spec/bad/ gives exactly the problems its header lists, as `file:line:col: field: message`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.errors import SpecError
from reconciler.spec.loader import check_files, load_spec

BAD_DIR = Path(__file__).parent / "bad"


@dataclass(frozen=True)
class BadSpec:
    name: str
    path: str
    environ: dict[str, str]
    expected: list[str]  # file:line:col: field: message, exactly as `saxctl validate` prints them


def _read_case(path: Path) -> BadSpec:
    environ: dict[str, str] = {}
    expected: list[str] = []
    # The header is ASCII comments; a case may hold non-UTF-8 bytes further down (that is what it tests).
    for line in path.read_bytes().split(b"\n"):
        if not line.startswith(b"#"):
            break
        text = line.decode("ascii")
        if text.startswith("# env: "):
            name, _, value = text[len("# env: "):].partition("=")
            environ[name] = value
        elif text.startswith("# expect: "):
            expected.append(f"{path}:{text[len('# expect: '):]}")
    return BadSpec(path.stem, str(path), environ, expected)


BAD_SPECS = [_read_case(path) for path in sorted(BAD_DIR.glob("*.yaml"))]


def test_there_are_enough_cases():
    assert len(BAD_SPECS) >= 60
    assert all(case.expected for case in BAD_SPECS), [case.name for case in BAD_SPECS if not case.expected]


@pytest.mark.parametrize("case", BAD_SPECS, ids=lambda case: case.name)
def test_check_files_reports_exactly_the_expected_problems(case: BadSpec):
    problems = check_files([case.path], environ=case.environ)
    assert [str(problem) for problem in problems] == case.expected


@pytest.mark.parametrize("case", BAD_SPECS, ids=lambda case: case.name)
def test_load_spec_raises_with_every_problem(case: BadSpec):
    with pytest.raises(SpecError) as raised:
        load_spec(case.path, environ=case.environ)
    assert [str(problem) for problem in raised.value.problems] == case.expected
    assert raised.value.exit_code == 3
    assert raised.value.message == "\n".join(case.expected)


def test_check_files_keeps_the_order_of_the_files():
    first, second = BAD_SPECS[0], BAD_SPECS[-1]
    problems = check_files([second.path, first.path], environ={**first.environ, **second.environ})
    assert [str(problem) for problem in problems] == second.expected + first.expected
