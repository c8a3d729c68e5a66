"""saxctl's command line: argument parsing and exit codes only; the work happens in engine/, spec/ and providers/."""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path

import click

from reconciler import __version__
from reconciler.errors import SaxctlError
from reconciler.render.console import error_console, output_console


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


class UsageError(SaxctlError):
    """Flags that do not go together."""


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
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as error:  # a bug: say so plainly, keep the traceback for --debug
            if ctx.obj and ctx.obj.get("debug"):
                raise
            error_console().print_error(SaxctlError(
                f"internal error: {type(error).__name__}: {error}",
                hint="This is a bug in saxctl. Rerun with --debug for the traceback and report it."))
            sys.exit(1)


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
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` and CI cancellation release the lock like Ctrl-C does
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


_TARGET = click.option("--target", "targets", multiple=True, metavar="ADDRESS",
                       help="Limit to this address and what it depends on (repeatable), e.g. gcs.bucket.data.")
_PARALLELISM = click.option("--parallelism", default=8, show_default=True, type=click.IntRange(1, 64),
                            help="How many changes may run at once.")
_FORCE_DELETE = click.option("--force-delete-buckets", is_flag=True,
                             help="Allow deleting buckets that still hold objects, objects included.")
_AUTO_APPROVE = click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate(files: tuple[str, ...]) -> None:
    """Check spec FILES against the schema and saxctl's rules, with no API call.

    Prints every problem as file:line:col: field: message and exits 3 when there is any.
    """
    from reconciler.spec.loader import check_files

    problems = check_files(list(files))
    for problem in problems:
        output_console().print_plain(str(problem))
    if problems:
        error_console().print_plain(f"{len(problems)} problem(s) in {len({p.file for p in problems})} file(s).")
        sys.exit(3)
    error_console().print_plain(f"{len(files)} spec(s) valid.")


@main.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("-out", "--out", "out_path", type=click.Path(dir_okay=False), help="Save the plan to this file "
              "for `saxctl apply FILE`.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (schemas/plan.schema.json).")
@click.option("--markdown", is_flag=True, help="Print the plan as Markdown, e.g. for a pull-request comment.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 when there are no changes, 2 when there are, 1 on error.")
@click.option("--destroy", is_flag=True, help="Plan the deletion of everything the spec owns.")
@click.option("--adopt", is_flag=True, help="Take over existing objects that saxctl did not create.")
@click.option("--show-unchanged", is_flag=True, help="Also list resources that need no change.")
@_TARGET
def plan(spec_path: str, out_path: str | None, as_json: bool, markdown: bool, detailed_exitcode: bool, destroy: bool,
         adopt: bool, show_unchanged: bool, targets: tuple[str, ...]) -> None:
    """Show what apply would change to make the world match SPEC, and why. Makes no change.

    \b
    Reads the live state of every resource (one read each), compares only the fields saxctl owns, and prints
    each create, update, replace and delete with its reason. Parts of the spec without a provider yet are
    listed as not managed.
    """
    from reconciler import runner
    from reconciler.engine.planfile import plan_to_json, write_plan
    from reconciler.providers.registry import ProviderOptions

    workspace = runner.open_workspace(spec_path, ProviderOptions())
    the_plan = runner.make_plan(workspace, mode="destroy" if destroy else "apply", adopt=adopt, targets=targets)
    if as_json:
        output_console().rich.out(json.dumps(plan_to_json(the_plan), indent=2), highlight=False)
    elif markdown:
        from reconciler.render.plan_markdown import plan_markdown

        output_console().rich.out(plan_markdown(the_plan), highlight=False)
    else:
        from reconciler.render.plan_text import plan_markup

        output_console().print_markup(plan_markup(the_plan, show_unchanged=show_unchanged))
    if out_path:
        write_plan(the_plan, Path(out_path))
        error_console().print_plain(f"Saved the plan to {out_path}. Apply exactly it with: saxctl apply {out_path}")
    if the_plan.conflicts:
        sys.exit(1)
    if detailed_exitcode and the_plan.has_changes:
        sys.exit(2)


@main.command()
@click.argument("source", metavar="SPEC|PLANFILE", type=click.Path(dir_okay=False))
@_AUTO_APPROVE
@click.option("--adopt", is_flag=True, help="Take over existing objects that saxctl did not create.")
@_TARGET
@_PARALLELISM
@_FORCE_DELETE
def apply(source: str, auto_approve: bool, adopt: bool, targets: tuple[str, ...], parallelism: int,
          force_delete_buckets: bool) -> None:
    """Make the world match a spec, or carry out a saved plan exactly.

    \b
    With a SPEC: plans, shows the plan, asks for confirmation (or --auto-approve), then applies.
    With a PLANFILE from `saxctl plan -out`: applies exactly that plan, and refuses it if anything it
    observed has changed since. Runs under a lock in the admin bucket; safe to run again after a failure.
    """
    _apply_or_destroy(source, "apply", auto_approve, adopt, targets, parallelism, force_delete_buckets)


@main.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@_AUTO_APPROVE
@_TARGET
@_PARALLELISM
@_FORCE_DELETE
def destroy(spec_path: str, auto_approve: bool, targets: tuple[str, ...], parallelism: int,
            force_delete_buckets: bool) -> None:
    """Delete everything SPEC owns (only objects carrying saxctl's mark for this spec).

    Buckets that still hold objects are kept unless --force-delete-buckets is given.
    """
    _apply_or_destroy(spec_path, "destroy", auto_approve, False, targets, parallelism, force_delete_buckets)


def _apply_or_destroy(source: str, mode: str, auto_approve: bool, adopt: bool, targets: tuple[str, ...],
                      parallelism: int, force_delete_buckets: bool) -> None:
    from reconciler import runner
    from reconciler.engine.planfile import read_plan
    from reconciler.providers.registry import ProviderOptions
    from reconciler.render.plan_text import plan_markup
    from reconciler.render.progress import ConsoleReporter, result_markup

    options = ProviderOptions(force_delete_buckets=force_delete_buckets)
    saved = mode == "apply" and _is_plan_file(source)
    if saved:
        if adopt or targets:
            raise UsageError("--adopt and --target belong to `saxctl plan` when applying a saved plan")
        the_plan = read_plan(Path(source))
        workspace = runner.open_saved_plan_workspace(the_plan, options)
    else:
        workspace = runner.open_workspace(source, options)
        the_plan = runner.make_plan(workspace, mode=mode, adopt=adopt, targets=targets)
        output_console().print_markup(plan_markup(the_plan))
    if the_plan.conflicts:
        raise SaxctlError(f"the plan has {len(the_plan.conflicts)} conflict(s) and cannot be applied",
                          hint="Resolve them, or rerun with --adopt to take over objects saxctl did not create.")
    if not the_plan.has_changes:
        if saved:
            output_console().print_plain("The saved plan has no changes.")
        return
    if not saved and not auto_approve:
        _confirm(mode)
    reporter = ConsoleReporter(error_console())
    try:
        result, seconds = runner.execute(workspace, the_plan, reporter, command=f"{mode} {source}",
                                         say=error_console().print_plain, parallelism=parallelism, saved=saved)
    finally:
        reporter.close()
    output_console().print_markup(result_markup(result, seconds))
    if result.interrupted:
        sys.exit(130)
    if not result.ok:
        sys.exit(1)


def _is_plan_file(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            start = handle.read(64).lstrip()
    except OSError:
        return False
    return start.startswith(b"{")


def _confirm(mode: str) -> None:
    if not sys.stdin.isatty():
        raise UsageError(f"refusing to {mode} without confirmation: stdin is not a terminal; pass --auto-approve")
    answer = click.prompt(f"Do you want to {mode} these changes? Only 'yes' will be accepted", default="",
                          show_default=False)
    if answer.strip() != "yes":
        raise SaxctlError(f"{mode} cancelled: nothing was changed")


@main.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when anything is not in sync.")
def status(spec_path: str, detailed_exitcode: bool) -> None:
    """Show each resource of SPEC and whether it is in sync, drifted, missing or not managed yet.

    Read-only: the same reads as `saxctl plan`, shown as a table.
    """
    from reconciler import runner
    from reconciler.providers.registry import ProviderOptions
    from reconciler.render.status import status_table

    workspace = runner.open_workspace(spec_path, ProviderOptions())
    the_plan = runner.make_plan(workspace)
    output_console().rich.print(status_table(the_plan))
    if detailed_exitcode and (the_plan.has_changes or the_plan.conflicts):
        sys.exit(2)


@main.command("force-unlock")
@click.argument("lock_id")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
def force_unlock(lock_id: str, spec_path: str) -> None:
    """Break the lock LOCK_ID left in SPEC's admin bucket by a run that died.

    The ID is printed by the command that found the lock held; a lock with another ID is left alone.
    """
    from reconciler import runner
    from reconciler.engine.lock import force_unlock as break_lock
    from reconciler.providers.registry import ProviderOptions

    holder = break_lock(runner.open_workspace(spec_path, ProviderOptions()).lock_store, lock_id)
    output_console().print_plain(f"Lock {lock_id} broken (it was held by {holder.describe()}).")


def _register_subcommands() -> None:
    from reconciler.checkpoint.cli import checkpoint
    from reconciler.sandbox.cli import sandbox

    main.add_command(sandbox)
    main.add_command(checkpoint)


_register_subcommands()
