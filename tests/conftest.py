"""Test-suite wide plugins: the sandbox fixture (tests/sandbox_fixture.py)."""

pytest_plugins = ["sandbox_fixture"]
