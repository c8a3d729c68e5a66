"""Load a spec file: parse with positions, expand ${VAR}, check schema and semantics, build the model."""

from __future__ import annotations

import os
from typing import Mapping, Sequence

from reconciler.errors import SpecError, SpecProblem
from reconciler.spec.build import build_spec
from reconciler.spec.document import SpecDocument, read_document, read_spec_files
from reconciler.spec.model import Spec
from reconciler.spec.schema import check_schema
from reconciler.spec.semantics import semantic_problems


def load_spec(path: str, environ: Mapping[str, str] | None = None) -> Spec:
    """The typed model of the spec at path; SpecError with every problem found when it is not valid.

    SpecFileError (exit 1) when there is no file to read.
    """
    [raw] = read_spec_files([path])
    document, problems = _checked_document(path, raw, environ)
    if problems or document is None:
        raise SpecError(problems)
    return build_spec(document)


def check_files(paths: Sequence[str], environ: Mapping[str, str] | None = None) -> list[SpecProblem]:
    """Every problem in every file, in the order given (for `saxctl validate FILE...`).

    SpecFileError, before any file is checked, when one of them cannot be read.
    """
    problems: list[SpecProblem] = []
    for path, raw in zip(paths, read_spec_files(paths)):
        problems.extend(_checked_document(path, raw, environ)[1])
    return problems


def _checked_document(path: str, raw: bytes, environ: Mapping[str, str] | None
                      ) -> tuple[SpecDocument | None, list[SpecProblem]]:
    document, problems = read_document(path, raw, os.environ if environ is None else environ)
    if document is None:
        return None, problems
    # A value that could not be read (unset variable, bad tag) would only draw echoes of the same problem.
    unreadable = {problem.field for problem in problems}
    schema_check = check_schema(document)
    checked = [problem for problem in schema_check.problems + semantic_problems(document, schema_check.refused)
               if problem.field not in unreadable]
    return document, sorted(problems + checked, key=lambda problem: (problem.line, problem.column, problem.field))
