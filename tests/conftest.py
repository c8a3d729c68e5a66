"""Test-suite wide plugins: the sandbox fixture (tests/sandbox_fixture.py), what a failed sandbox test's report says
of the sandbox (tests/sandbox_postmortem.py), the secrets scan at the session's end (tests/leak_check.py), pytester
(for the scan's own test)."""

pytest_plugins = ["sandbox_fixture", "sandbox_postmortem", "leak_check", "pytester"]
