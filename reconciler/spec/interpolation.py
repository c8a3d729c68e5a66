"""Expand ${VAR} and ${VAR:-default} in spec strings from the environment; $${ stays a literal ${."""

from __future__ import annotations

import re
from typing import Mapping

# One alternation so a scan left to right sees an escape before the reference it would otherwise start.
_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_REFERENCE = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)


class InterpolationError(ValueError):
    """A reference that cannot be expanded; the message is written for the user."""


def interpolate(text: str, environ: Mapping[str, str]) -> str:
    """text with every reference replaced; raises InterpolationError naming the first bad one."""
    if "${" not in text:
        return text
    return _TOKEN.sub(lambda match: _expand(match, environ), text)


def _expand(match: re.Match[str], environ: Mapping[str, str]) -> str:
    token = match.group(0)
    if token == "$${":
        return "${"
    if match.group(1) is None:
        raise InterpolationError("unterminated '${': close it with '}' or write '$${' for a literal '${'")
    reference = _REFERENCE.fullmatch(match.group(1))
    if reference is None:
        raise InterpolationError(f"'{token}' is not a variable reference: use ${{NAME}} or ${{NAME:-default}}")
    name, default = reference.group("name"), reference.group("default")
    value = environ.get(name)
    if default is not None:
        # Shell semantics: ':-' takes the default when the variable is unset or empty.
        return value if value else default
    if value is None:
        raise InterpolationError(f"environment variable {name} is not set")
    return value
