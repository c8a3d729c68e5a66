"""Output to a pipe or a file is printed without rich's console (it costs a no-op plan ~12 ms to import): the text
must be exactly what rich would have printed there."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from reconciler.render.console import SaxConsole

MARKUPS = [
    "saxctl will apply spec [bold]demo[/] (specs/demo.yaml)",
    r"  [red]-[/] [bold]gcs.bucket.a\[0][/] [red]delete[/]  [dim]# removed from the spec: it holds 3 objects[/]",
    "[yellow]⚠ a very long line that a terminal of 80 columns would fold " + "x" * 200 + "[/]",
    "a reason quoting :warning: and :smile: and [not markup] as a user wrote them",
    "",
]


@pytest.mark.parametrize("markup", MARKUPS, ids=["bold", "escaped bracket", "long", "emoji codes", "empty"])
def test_plain_output_is_what_rich_prints_to_a_pipe(markup, capsys, monkeypatch):
    for name in ("TTY_COMPATIBLE", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    SaxConsole(stderr=False).print_markup(markup)
    through_rich = io.StringIO()
    Console(file=through_rich, highlight=False, soft_wrap=True, width=200).print(markup)
    assert capsys.readouterr().out == through_rich.getvalue()


@pytest.mark.parametrize("environ, styled", [({"FORCE_COLOR": "1"}, True), ({"FORCE_COLOR": ""}, False),
                                             ({"TTY_COMPATIBLE": "1"}, True),
                                             ({"TTY_COMPATIBLE": "0", "FORCE_COLOR": "1"}, False), ({}, False)])
def test_colour_forced_to_a_pipe_goes_through_rich(environ, styled, capsys, monkeypatch):
    for name in ("TTY_COMPATIBLE", "FORCE_COLOR", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    SaxConsole(stderr=False).print_markup("[bold]demo[/]")
    assert ("\x1b[1m" in capsys.readouterr().out) is styled
