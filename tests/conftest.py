"""Test-suite wide plugins: the sandbox fixture (tests/sandbox_fixture.py), the secrets scan at the session's end
(tests/leak_check.py), pytester (for the scan's own test)."""

pytest_plugins = ["sandbox_fixture", "leak_check", "pytester"]
