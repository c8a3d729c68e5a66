"""saxctl's command line: argument parsing and exit codes only; the work happens in engine/, spec/ and providers/."""

from __future__ import annotations

import logging
import sys

import click

from reconciler import __version__
from reconciler.errors import SaxctlError
from reconciler.render.console import error_console


class _Group(click.Group):
    """Maps saxctl's error types to exit codes in one place, with no traceback unless --debug."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SaxctlError as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            error_console().print_error(error)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            error_console().print_plain("Interrupted.")
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="saxctl")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option("-v", "--verbose", is_flag=True, help="Log API calls and decisions to stderr.")
@click.pass_context
def main(ctx: click.Context, debug: bool, verbose: bool) -> None:
    """Make Google Cloud, Kubernetes and Sax match one spec.

    \b
    Typical session:
      saxctl validate specs/gptj-v5e-2x2.yaml     # check the spec, no API calls
      saxctl plan specs/gptj-v5e-2x2.yaml -out plan.json
      saxctl apply plan.json                      # exactly what was planned, or nothing if the world moved
      saxctl destroy specs/gptj-v5e-2x2.yaml

    \b
    Try it locally first: eval "$(saxctl sandbox up)" points every command at local emulators.
    Without those exports, saxctl talks to real Google Cloud with Application Default Credentials.

    \b
    Exit codes: 0 ok / no changes, 1 error, 2 changes present (--detailed-exitcode), 3 invalid spec.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _register_subcommands() -> None:
    from reconciler.checkpoint.cli import checkpoint
    from reconciler.sandbox.cli import sandbox

    main.add_command(sandbox)
    main.add_command(checkpoint)


_register_subcommands()
