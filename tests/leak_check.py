"""At the end of the test session: no secret in anything the suite left on disk (reconciler/sandbox/leaks.py).

Every sandbox a test starts, every plan file and log it writes, lives under the session's temporary tree; a token
or key found there outside the sandbox's own secret files fails the session, naming the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reconciler.sandbox.leaks import scan


@pytest.fixture
def secret_file(tmp_path: Path) -> Iterator[Callable[[str, str], Path]]:
    """Writes a secret a test makes on purpose (a key for a credentials test, a kubeconfig holding the sandbox's
    token) as a 0600 file, removed when the test ends: what the session's scan finds afterwards is a leak."""
    written: list[Path] = []

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.touch(mode=0o600)
        path.write_text(text)
        written.append(path)
        return path

    yield write
    for path in written:
        path.unlink(missing_ok=True)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None or getattr(factory, "_basetemp", None) is None:
        return  # no test made a temporary directory
    leaks = scan([factory.getbasetemp()])
    if leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = [f"secret found outside the sandbox's secret files: {leak}" for leak in leaks]
        if reporter is not None:
            reporter.write_sep("=", "secrets leaked to disk", red=True)
            for line in lines:
                reporter.write_line(line)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
