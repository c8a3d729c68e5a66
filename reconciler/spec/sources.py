"""Check that local checkpoint sources exist: run at plan time by the checkpoint provider, not by load_spec."""

from __future__ import annotations

import os

from reconciler.errors import SpecProblem
from reconciler.spec.model import Spec


def local_source_problems(spec: Spec) -> list[SpecProblem]:
    """A problem at checkpoints.NAME.source.path for each local source that is not an existing directory.

    load_spec leaves this out on purpose: a spec stays valid (and plannable) on a machine without the weights.
    """
    problems = []
    for name, checkpoint in spec.checkpoints.items():
        path = checkpoint.source.path
        if path.startswith("gs://") or os.path.isdir(path):
            continue
        field_path = f"checkpoints.{name}.source.path"
        line, column = spec.source.locate(field_path)
        what = "is not a directory" if os.path.exists(path) else "does not exist"
        problems.append(SpecProblem(spec.source.file, line, column, field_path,
                                    f"local checkpoint directory {path} {what}"))
    return problems
