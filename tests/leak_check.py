"""At the end of the test session: no secret in anything the suite left on disk (reconciler/sandbox/leaks.py).

Every sandbox a test starts, every plan file and log it writes, lives under the session's temporary tree; a token
or key found there outside the sandbox's own secret files fails the session, naming the file.
"""

from __future__ import annotations

import pytest

from reconciler.sandbox.leaks import scan


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
