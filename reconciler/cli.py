"""saxctl's command line: argument parsing and exit codes only; the work happens in engine/, spec/ and providers/."""

from __future__ import annotations

import atexit
import gc
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import click

from reconciler import __version__
from reconciler.errors import SaxctlError
from reconciler.render.console import error_console, output_console


GC_THRESHOLD = 50_000  # new container objects between two collections of the youngest generation (Python's: 700)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


class UsageError(SaxctlError):
    """Flags that do not go together."""


class _Group(click.Group):
    """Maps saxctl's error types to exit codes in one place, with no traceback unless --debug."""

    def main(self, *args, **kwargs):
        # Usage errors exit 1 (Terraform's convention), not click's 2: 2 means "changes present" to
        # `--detailed-exitcode` and `drift`, and a CI job must tell a typo from drift.
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Exit as done:
            sys.exit(done.exit_code)
        except click.ClickException as error:
            error.show()
            sys.exit(1)
        except click.exceptions.Abort:
            error_console().print_plain("Aborted.")
            sys.exit(1)

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
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort, SystemExit):
            raise
        except Exception as error:  # a bug: say so plainly, keep the traceback for --debug
            if ctx.obj and ctx.obj.get("debug"):
                raise
            from reconciler.providers.google_errors import known_failure

            known = known_failure(error)  # a dead endpoint or expired credentials, met outside any API call's wrapper
            if known is not None:
                error_console().print_error(known)
                sys.exit(known.exit_code)
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
    Exit codes: 0 ok / no changes, 1 error (usage errors included), 2 changes present (--detailed-exitcode),
    3 invalid spec, 130 interrupted.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` and CI cancellation release the lock like Ctrl-C does
    # Ctrl-C (SIGINT) stops a run whatever it inherited: bash starts a background job (`saxctl apply &`, a CI step)
    # with SIGINT ignored, and a run would otherwise heed it only while its own handlers are in place.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


_TARGET = click.option("--target", "targets", multiple=True, metavar="ADDRESS",
                       help="Limit to this address (repeatable), as plans print it, e.g. gcs.bucket.data: with what "
                            "it depends on, or for a destroy with what depends on it.")
_PARALLELISM = click.option("--parallelism", default=8, show_default=True, type=click.IntRange(1, 64),
                            help="How many changes may run at once.")
_LOCK_TIMEOUT = click.option("--lock-timeout", default=0.0, show_default=True, type=click.FloatRange(0, 86400),
                             metavar="SECONDS", help="Wait this long for a lock another run holds (0: fail at once, "
                                                     "naming the holder).")
_AUTO_APPROVE = click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
_ALLOW_REPLACE = click.option("--allow-replace", "allow_replace", multiple=True, metavar="ADDRESS",
                              help="Agree to replace ADDRESS although that deletes what it holds or stops what runs "
                                   "on it (repeatable). Without it such a plan is blocked.")
_ALLOW_DELETE = click.option("--allow-delete", "allow_delete", multiple=True, metavar="ADDRESS",
                             help="Agree to delete ADDRESS, which saxctl made and the spec no longer has, although it "
                                  "holds data (repeatable).")
_FORCE_DELETE = click.option("--force-delete-buckets", is_flag=True,
                             help="Destroy buckets that still hold objects saxctl did not write, objects included.")
_KUBECONFIG = click.option("--kubeconfig", type=click.Path(dir_okay=False), metavar="PATH",
                           help="Reach the cluster's apiserver through this kubeconfig, instead of the GKE cluster's "
                                "endpoint and CA with Application Default Credentials.")
_KUBE_CONTEXT = click.option("--context", "kube_context", metavar="NAME",
                             help="The kubeconfig context to use (default: its current-context; the kubeconfig "
                                  "defaults to $KUBECONFIG or ~/.kube/config).")
_FORCE_CONFLICTS = click.option("--force-conflicts", is_flag=True,
                                help="Take over fields of Kubernetes objects that another field manager applied "
                                     "(server-side apply conflicts). Without it such a plan is refused.")
_ROLLOUT_TIMEOUT = click.option("--rollout-timeout", default=900.0, show_default=True,
                                type=click.FloatRange(1, 86400), metavar="SECONDS",
                                help="How long apply waits for each Sax server to be ready before it says why not.")


def _provider_options(kubeconfig: str | None, kube_context: str | None, force_conflicts: bool = False,
                  rollout_timeout: float | None = None):
    from reconciler.providers.clients import ProviderOptions
    from reconciler.providers.kubernetes.options import DEFAULT_ROLLOUT_TIMEOUT_S, KubeOptions

    if kube_context and not kubeconfig:
        kubeconfig = (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0] or os.path.expanduser("~/.kube/config")
    return ProviderOptions(kubernetes=KubeOptions(kubeconfig, kube_context, force_conflicts,
                                                  rollout_timeout or DEFAULT_ROLLOUT_TIMEOUT_S))


def _approvals(allow_replace=(), allow_delete=(), force_delete_buckets=False):
    from reconciler.engine.plan import Approvals

    return Approvals(frozenset(allow_replace), frozenset(allow_delete),
                     frozenset({"--force-delete-buckets"}) if force_delete_buckets else frozenset())


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
@click.argument("spec_path", metavar="SPEC", required=False, type=click.Path(dir_okay=False))
@click.option("--from", "from_path", metavar="OLD_SPEC", type=click.Path(dir_okay=False), help="Plan offline, with "
              "--to: the world is taken to be what applying OLD_SPEC leaves (no API call, no credentials), e.g. a "
              "pull request's base.")
@click.option("--to", "to_path", metavar="NEW_SPEC", type=click.Path(dir_okay=False), help="The spec an offline plan "
              "plans, in place of SPEC; without --from, in a world where nothing of it exists yet (a new spec).")
@click.option("-out", "--out", "out_path", type=click.Path(dir_okay=False), help="Save the plan to this file "
              "for `saxctl apply FILE`.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (schemas/plan.schema.json).")
@click.option("--markdown", is_flag=True, help="Print the plan as Markdown, e.g. for a pull-request comment.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 when there are no changes, 2 when there are, 1 on error.")
@click.option("--destroy", is_flag=True, help="Plan the deletion of everything the spec owns.")
@click.option("--adopt", is_flag=True, help="Take over existing objects that saxctl did not create.")
@click.option("--show-unchanged", is_flag=True, help="Also list resources that need no change.")
@click.option("--prices", "prices_path", type=click.Path(dir_okay=False), help="Your own prices (YAML or JSON, "
              "any part of the shape of reconciler/cost/list_prices.json) in place of the list prices the plan's "
              "cost is computed with.")
@_TARGET
@_ALLOW_REPLACE
@_ALLOW_DELETE
@_FORCE_DELETE
@_FORCE_CONFLICTS
@_KUBECONFIG
@_KUBE_CONTEXT
def plan(spec_path: str | None, from_path: str | None, to_path: str | None, out_path: str | None, as_json: bool,
         markdown: bool, detailed_exitcode: bool, destroy: bool, adopt: bool, show_unchanged: bool,
         targets: tuple[str, ...], allow_replace: tuple[str, ...], allow_delete: tuple[str, ...],
         force_delete_buckets: bool, force_conflicts: bool, kubeconfig: str | None, kube_context: str | None,
         prices_path: str | None) -> None:
    """Show what apply would change to make the world match SPEC, and why. Makes no change.

    \b
    Reads the live state of every resource (one read each, parents before what lives in them), compares only
    the fields saxctl owns, and prints each create, update, replace and delete with its reason; objects saxctl
    made that left the spec are deleted ("pruned"). A replace or delete that would lose data is blocked unless
    you agree to it by name (--allow-replace / --allow-delete), and a saved plan records that agreement.
    The monthly cost the plan adds or removes (TPU chips, CPU nodes, the cluster fee) is shown at list prices,
    or at yours with --prices FILE.

    \b
    With --from OLD_SPEC --to NEW_SPEC (no SPEC), the plan is offline: the same plan as a live plan of NEW_SPEC
    in a world where OLD_SPEC was applied, made with no API call and no credentials (a pull request's review).
    What only the cloud can tell (quotas, what a delete would lose) is not checked, and it says so.
    With --to NEW_SPEC alone, the world is taken to hold nothing of it yet: the plan of a spec a pull request
    adds, everything to create, with its cost.
    """
    from reconciler import runner
    from reconciler.cost.estimate import estimate
    from reconciler.engine.planfile import plan_to_json, write_plan

    offline = _offline_specs(spec_path, from_path, to_path, out_path, destroy)
    prices = _price_table(prices_path)  # a bad --prices file is refused before any API call
    provider_options = _provider_options(kubeconfig, kube_context, force_conflicts)
    if offline:
        workspace = runner.open_offline_workspace(*offline, provider_options)
    else:
        workspace = runner.open_workspace(spec_path, _say_read_retry, provider_options)
    options = runner.PlanOptions("destroy" if destroy else "apply", adopt, targets,
                                 _approvals(allow_replace, allow_delete, force_delete_buckets))
    the_plan = runner.make_plan(workspace, options)
    said = None
    if offline:
        skipped = workspace.connection.providers.skipped
        applied = f"{offline[0]} was applied" if offline[0] else "nothing of it exists yet"
        said = (f"Offline plan of {offline[1]} where {applied}: no API call was made."
                + (f" Not checked offline: {'; '.join(skipped)}." if skipped else ""))
    if as_json:
        output_console().rich.out(json.dumps(plan_to_json(the_plan), indent=2), highlight=False)
        if said:  # the JSON stays the plan's shape (schemas/plan.schema.json)
            error_console().print_plain(said)
    elif markdown:
        from reconciler.render.plan_markdown import plan_markdown

        output_console().rich.out(plan_markdown(the_plan, estimate(the_plan, prices), offline=said), highlight=False)
    else:
        from reconciler.render.plan_text import cost_markup, plan_markup

        output_console().print_markup(plan_markup(the_plan, show_unchanged=show_unchanged, offline=said)
                                      + cost_markup(estimate(the_plan, prices)))
    if out_path:
        write_plan(the_plan, Path(out_path))
        error_console().print_plain(f"Saved the plan to {out_path}. Apply exactly it with: saxctl apply {out_path}")
    if the_plan.problems:
        runner.refuse_unapplicable(the_plan, workspace)
    if not the_plan.applicable:
        sys.exit(1)
    if detailed_exitcode and the_plan.has_changes:
        sys.exit(2)


def _offline_specs(spec_path: str | None, from_path: str | None, to_path: str | None, out_path: str | None,
                   destroy: bool) -> tuple[str | None, str] | None:
    """(OLD_SPEC, NEW_SPEC) of an offline plan (OLD_SPEC None: nothing applied yet), None for a live one; flags
    that do not go together refused."""
    if from_path is None and to_path is None:
        if spec_path is None:
            raise UsageError("missing argument SPEC (or --from OLD_SPEC --to NEW_SPEC for an offline plan)",
                             hint="Run `saxctl plan --help`.")
        return None
    if to_path is None:
        raise UsageError("--from needs --to: an offline plan plans NEW_SPEC in the world OLD_SPEC leaves",
                         hint="Run `saxctl plan --from OLD_SPEC --to NEW_SPEC`.")
    if spec_path is not None:
        raise UsageError(f"SPEC ({spec_path}) and --from/--to do not go together: --to names the spec an offline "
                         "plan plans", hint="Drop SPEC, or drop --from and --to for a live plan.")
    if out_path is not None or destroy:
        raise UsageError(f"{'-out' if out_path else '--destroy'} does not go with --from/--to: an offline plan read "
                         "nothing of the world, so it cannot be applied or destroy it", hint="Plan live for that.")
    return from_path, to_path


def _price_table(prices_path: str | None):
    """The list prices saxctl ships, with the user's own (--prices FILE) in place of the ones it names."""
    from reconciler.cost import prices

    table = prices.list_prices()
    return prices.with_user_prices(table, Path(prices_path)) if prices_path else table


def _say_read_retry(what: str, attempt: int, error, delay: float) -> None:
    """A plan's read retried, said as apply's progress says it: which object, what it answered, when the next try is."""
    error_console().print_plain(f"{error.message}; retrying in {delay:.1f}s (attempt {attempt} failed)")


@main.command()
@click.argument("source", metavar="SPEC|PLANFILE", type=click.Path(dir_okay=False))
@_AUTO_APPROVE
@click.option("--adopt", is_flag=True, help="Take over existing objects that saxctl did not create.")
@_TARGET
@_ALLOW_REPLACE
@_ALLOW_DELETE
@_FORCE_CONFLICTS
@_PARALLELISM
@_LOCK_TIMEOUT
@_ROLLOUT_TIMEOUT
@_KUBECONFIG
@_KUBE_CONTEXT
def apply(source: str, auto_approve: bool, adopt: bool, targets: tuple[str, ...], allow_replace: tuple[str, ...],
          allow_delete: tuple[str, ...], force_conflicts: bool, parallelism: int, lock_timeout: float,
          rollout_timeout: float, kubeconfig: str | None, kube_context: str | None) -> None:
    """Make the world match a spec, or carry out a saved plan exactly.

    \b
    With a SPEC: takes the lock, plans, shows the plan, asks for confirmation (or --auto-approve), applies.
    With a PLANFILE from `saxctl plan -out`: takes the lock, refuses the plan if anything it observed has
    changed since, then applies exactly it. Safe to run again after a failure or a crash: it resumes from the
    live state. The first Ctrl-C stops starting new changes and waits for those under way; a second one leaves
    at once (remote operations go on, and the next apply resumes them).
    """
    if _is_plan_file(source):
        if adopt or targets or allow_replace or allow_delete or force_conflicts:
            raise UsageError("--adopt, --target, --allow-replace, --allow-delete and --force-conflicts belong to "
                             "`saxctl plan` when applying a saved plan: the plan records them")
        _apply_saved(source, auto_approve, parallelism, lock_timeout,
                     _provider_options(kubeconfig, kube_context, rollout_timeout=rollout_timeout))
        return
    from reconciler.runner import PlanOptions

    _apply_spec(source, PlanOptions("apply", adopt, targets, _approvals(allow_replace, allow_delete)), auto_approve,
                parallelism, lock_timeout, _provider_options(kubeconfig, kube_context, force_conflicts, rollout_timeout))


@main.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@_AUTO_APPROVE
@_TARGET
@_FORCE_DELETE
@_ALLOW_DELETE
@_PARALLELISM
@_LOCK_TIMEOUT
@_KUBECONFIG
@_KUBE_CONTEXT
def destroy(spec_path: str, auto_approve: bool, targets: tuple[str, ...], force_delete_buckets: bool,
            allow_delete: tuple[str, ...], parallelism: int, lock_timeout: float, kubeconfig: str | None,
            kube_context: str | None) -> None:
    """Delete everything SPEC owns (only objects carrying saxctl's mark for this spec).

    Buckets that still hold objects saxctl did not write are kept (and the destroy refused) unless
    --force-delete-buckets is given; the plan lists what they hold.
    """
    from reconciler.runner import PlanOptions

    _apply_spec(spec_path, PlanOptions("destroy", False, targets, _approvals((), allow_delete, force_delete_buckets)),
                auto_approve, parallelism, lock_timeout, _provider_options(kubeconfig, kube_context))


class _CliUi:
    """The runner's Ui on the terminal: the plan on stdout, progress and questions on stderr."""

    def __init__(self, mode: str, auto_approve: bool, saved: bool):
        from reconciler.render.progress import ConsoleReporter

        self.reporter = ConsoleReporter(error_console())
        self._mode, self._auto_approve, self._saved = mode, auto_approve, saved

    def say(self, text: str) -> None:
        error_console().print_plain(text)

    def show_plan(self, plan) -> None:
        from reconciler.render.plan_text import plan_markup

        output_console().print_markup(plan_markup(plan))

    def confirm(self, plan) -> None:
        if self._auto_approve or self._saved:
            return
        verb = "destroy what is listed above" if self._mode == "destroy" else "apply these changes"
        if not sys.stdin.isatty():
            raise UsageError(f"refusing to {self._mode} without confirmation: stdin is not a terminal; pass "
                             "--auto-approve")
        answer = click.prompt(f"Do you want to {verb}? Only 'yes' will be accepted", default="", show_default=False)
        if answer.strip() != "yes":
            raise SaxctlError(f"{self._mode} cancelled: nothing was changed")


def _apply_spec(spec_path: str, options, auto_approve: bool, parallelism: int, lock_timeout: float,
                provider_options) -> None:
    from reconciler import runner

    workspace = runner.open_workspace(spec_path, _say_read_retry, provider_options)
    ui = _CliUi(options.mode, auto_approve, saved=False)
    try:
        _, result, seconds = runner.apply_spec(workspace, options, ui, command=f"{options.mode} {spec_path}",
                                               parallelism=parallelism, lock_timeout_s=lock_timeout)
    finally:
        ui.reporter.close()
    _finish(options.mode, result, seconds)


def _apply_saved(plan_path: str, auto_approve: bool, parallelism: int, lock_timeout: float, provider_options) -> None:
    from reconciler import runner
    from reconciler.engine.planfile import read_plan

    from reconciler.providers.table import ALL_KINDS

    the_plan = read_plan(Path(plan_path), ALL_KINDS)
    workspace = runner.open_saved_plan_workspace(the_plan, _say_read_retry, provider_options)
    ui = _CliUi(the_plan.mode, auto_approve, saved=True)
    try:
        result, seconds = runner.apply_saved(workspace, the_plan, ui, command=f"apply {plan_path}",
                                             parallelism=parallelism, lock_timeout_s=lock_timeout)
    finally:
        ui.reporter.close()
    if result is None:
        output_console().print_plain("The saved plan has no changes.")
        return
    _finish(the_plan.mode, result, seconds)


def _finish(mode: str, result, seconds: float) -> None:
    from reconciler.render.progress import result_markup

    if result is None:
        return
    output_console().print_markup(result_markup(result, seconds, mode))
    if result.abandoned:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)  # worker threads may still be inside an API call: do not wait for them
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


@main.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when anything is not in sync, or falls short of "
              "the spec (workload replicas not ready, model replicas not loaded).")
@_KUBECONFIG
@_KUBE_CONTEXT
def status(spec_path: str, detailed_exitcode: bool, kubeconfig: str | None, kube_context: str | None) -> None:
    """Show each resource of SPEC and whether it is in sync, drifted, missing or not managed yet.

    Read-only: the same reads as `saxctl plan`, shown as a table, with what each object holds now: nodes of the
    cluster and pools, ready replicas of the workloads, each model's replicas requested / assigned / loaded (and why
    not loaded), and models published in the cell by someone else (foreign: never touched).
    """
    from reconciler import runner
    from reconciler.render.status import status_table

    workspace = runner.open_workspace(spec_path, _say_read_retry, _provider_options(kubeconfig, kube_context))
    the_plan = runner.make_plan(workspace)
    details = workspace.connection.providers.describe(the_plan.changes)
    output_console().rich.print(status_table(the_plan, details))
    if detailed_exitcode and (the_plan.has_changes or not the_plan.applicable
                              or any(detail.falls_short for detail in details)):
        sys.exit(2)


@main.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--correct", is_flag=True, help="Set back what is safe to set back (in-place updates, re-creating what "
              "is missing), under the same lock as apply. Never asks.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (schemas/drift-report.schema.json).")
@_ALLOW_REPLACE
@_ALLOW_DELETE
@click.option("--fight-limit", default=3, show_default=True, type=click.IntRange(0, 1000), metavar="RUNS",
              help="Stop correcting a field set back on each of the last RUNS runs: something else keeps changing "
                   "it (0: never stop).")
@click.option("--metrics-file", type=click.Path(dir_okay=False), metavar="PATH",
              help="Write the run's metrics here in Prometheus text format (node-exporter's textfile collector).")
@click.option("--pushgateway", metavar="URL", help="Push-add the run's metrics to this Prometheus Pushgateway.")
@_PARALLELISM
@_LOCK_TIMEOUT
@_ROLLOUT_TIMEOUT
@_KUBECONFIG
@_KUBE_CONTEXT
def drift(spec_path: str, correct: bool, as_json: bool, allow_replace: tuple[str, ...], allow_delete: tuple[str, ...],
          fight_limit: int, metrics_file: str | None, pushgateway: str | None, parallelism: int, lock_timeout: float,
          rollout_timeout: float, kubeconfig: str | None, kube_context: str | None) -> None:
    """Report what drifted from SPEC and who changed it; with --correct, set back what is safe. For unattended runs.

    \b
    One entry per drifted field: desired, live, who changed it where the API says, and what was done: corrected,
    left (a replace or delete needs --allow-replace / --allow-delete; a field another field manager applied is
    never forced; a field saxctl keeps setting back is left to the other controller), or ignored by a
    drift.ignore rule of the spec. A Kubernetes Event on the ApplySet ConfigMap says what drifted.

    \b
    Exit codes: 0 nothing drifted (or all of it corrected), 2 drift found (with --correct: some left), 1 error,
    3 invalid spec.
    """
    from reconciler.drift.command import run_drift

    code = run_drift(spec_path, correct=correct, as_json=as_json,
                     approvals=_approvals(allow_replace, allow_delete), fight_limit=fight_limit,
                     metrics_file=metrics_file, pushgateway=pushgateway, parallelism=parallelism,
                     lock_timeout=lock_timeout, ui=_CliUi("apply", True, saved=False),
                     provider_options=_provider_options(kubeconfig, kube_context, rollout_timeout=rollout_timeout),
                     on_read_retry=_say_read_retry)
    if code:
        sys.exit(code)


@main.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.argument("model")
@click.argument("prompt")
@click.option("--json", "as_json", is_flag=True, help="Print the HTTP server's reply as it is.")
@_KUBECONFIG
@_KUBE_CONTEXT
def generate(spec_path: str, model: str, prompt: str, as_json: bool, kubeconfig: str | None,
             kube_context: str | None) -> None:
    """Ask MODEL of SPEC (its name in models:) to continue PROMPT; print each candidate with its score.

    Through the Sax HTTP server's /generate, reached by the Kubernetes API's port-forward (no public address needed).
    """
    from reconciler import runner
    from reconciler.providers.sax import generate as sax_generate

    workspace = runner.open_workspace(spec_path, _say_read_retry, _provider_options(kubeconfig, kube_context))
    params = sax_generate.model_params(workspace.spec, workspace.connection.providers, model)
    reply = sax_generate.generate(params, _provider_options(kubeconfig, kube_context).kubernetes, prompt)
    if as_json:
        output_console().rich.out(json.dumps(reply, indent=2, ensure_ascii=False), highlight=False)
        return
    for text, score in sax_generate.candidates(reply):
        # A model's text may hold control characters (a terminal would act on them): shown escaped.
        shown = "".join(char if char.isprintable() else f"\\u{ord(char):04x}" for char in text)
        output_console().print_plain(f"{score:9.4f}  {shown}")


@main.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
def render(spec_path: str) -> None:
    """Print the Kubernetes manifests saxctl applies for SPEC, as YAML documents (for GitOps). No API call.

    The same objects `saxctl apply` sends by server-side apply: the service account, the Sax servers and the HTTP
    Service, with saxctl's ownership labels and the ApplySet record (a ConfigMap) it prunes from.
    """
    from reconciler.providers.kubernetes.gitops import manifests_yaml
    from reconciler.spec.loader import load_spec

    output_console().rich.out(manifests_yaml(load_spec(spec_path), spec_path), highlight=False, end="")


@main.group()
def cron() -> None:
    """Run `saxctl drift --correct` on a schedule in the spec's own cluster."""


@cron.command("render")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--image", required=True, metavar="IMAGE", help="The saxctl image (built from the Containerfile).")
@click.option("--schedule", default="*/10 * * * *", show_default=True, help="The CronJob's schedule (cron syntax).")
@click.option("--time-zone", default="Etc/UTC", show_default=True, help="The time zone of the schedule.")
@click.option("--google-service-account", metavar="EMAIL",
              help="The corrector's Google service account [default: saxctl-drift@PROJECT.iam.gserviceaccount.com].")
@click.option("--pushgateway", metavar="URL", help="Push-add each run's metrics to this Prometheus Pushgateway.")
def cron_render(spec_path: str, image: str, schedule: str, time_zone: str, google_service_account: str | None,
                pushgateway: str | None) -> None:
    """Print what runs the drift corrector in the cluster, as YAML: a CronJob, its service account (Workload
    Identity), RBAC limited to what saxctl manages, and the spec in a ConfigMap. No API call."""
    from reconciler.drift.cron import CronOptions, cron_yaml
    from reconciler.spec.loader import load_spec

    options = CronOptions(image, schedule, time_zone, google_service_account, pushgateway)
    output_console().rich.out(cron_yaml(load_spec(spec_path), spec_path, options), highlight=False, end="")


@main.command("force-unlock")
@click.argument("lock_id")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
def force_unlock(lock_id: str, spec_path: str) -> None:
    """Break the lock LOCK_ID left in SPEC's admin bucket by a run that died.

    The ID is printed by the command that found the lock held (with the holder and when it last refreshed the lock);
    a lock with another ID is left alone.
    """
    from reconciler import runner
    from reconciler.engine.lock import force_unlock as break_lock

    holder = break_lock(runner.open_workspace(spec_path).connection.lock_homes, lock_id)
    output_console().print_plain(f"Lock {lock_id} broken (it was held by {holder.describe()}).")


def _register_subcommands() -> None:
    from reconciler.checkpoint.cli import checkpoint
    from reconciler.sandbox.cli import sandbox

    main.add_command(sandbox)
    main.add_command(checkpoint)


_register_subcommands()


def run() -> None:
    """The `saxctl` command. A Ctrl-C that lands while the CLI is already on its way out still exits 130."""
    # A command imports ~1,000 modules of client libraries: at the default threshold (a collection every 700 new
    # objects) the cyclic collector runs hundreds of times meanwhile and frees next to nothing. Collecting every
    # GC_THRESHOLD new objects instead still collects during a long apply.
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
    try:
        try:
            main(prog_name="saxctl")
            code = 0
        except SystemExit as done:
            code = done.code
        _leave(code)
    except KeyboardInterrupt:
        sys.exit(130)


def _leave(code) -> None:
    """Exit with code, skipping the interpreter's teardown when no thread is left to wait for: freeing the ~1,000
    modules the client libraries import takes 0.1-0.15 s of every command. What is registered to run at exit runs."""
    if any(thread.is_alive() and not thread.daemon for thread in threading.enumerate()
           if thread is not threading.main_thread()):
        sys.exit(code)  # the ordinary exit waits for them
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()  # logging's flush, and whatever else asked to run at exit
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (saxctl plan | head): nothing more can be said
            pass
    os._exit(code or 0)
