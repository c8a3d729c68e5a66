"""Test-suite wide plugins: the sandbox fixture (tests/sandbox_fixture.py), the secrets scan at the end (tests/leak_check.py)."""

pytest_plugins = ["sandbox_fixture", "leak_check", "pytester"]
