"""`saxctl drift SPEC`: the run around the runner's use case — check the ignore rules, report, post the Event, write
the metrics (also when the run fails: that is when they matter), and choose the exit code."""

from __future__ import annotations

import json
import time
from datetime import datetime

from reconciler.drift import metrics
from reconciler.drift.classify import CORRECTED, LEFT, unknown_addresses
from reconciler.drift.events import post_events
from reconciler.drift.report import REPORTED, as_reported, report_json, report_lines, summary
from reconciler.errors import SaxctlError, SpecError, SpecProblem
from reconciler.render.console import error_console, output_console

NO_DRIFT, DRIFT, FAILED, INTERRUPTED = 0, 2, 1, 130


def run_drift(spec_path: str, *, correct: bool, as_json: bool, approvals, fight_limit: int, metrics_file: str | None,
              pushgateway: str | None, parallelism: int, lock_timeout: float, ui, provider_options,
              on_read_retry) -> int:
    from reconciler import runner

    workspace = runner.open_workspace(spec_path, on_read_retry, provider_options)
    check_ignore_rules(workspace)
    try:
        try:
            run = runner.correct_drift(workspace, approvals, ui, correct=correct, fight_limit=fight_limit,
                                       command=f"drift {'--correct ' if correct else ''}{spec_path}",
                                       parallelism=parallelism, lock_timeout_s=lock_timeout)
        finally:
            ui.reporter.close()
    except SaxctlError:
        _write_metrics(metrics_file, pushgateway, workspace.spec.name, ok=False,
                       last_success=_last_success_on_record(workspace), drifts=())
        raise
    drifts = as_reported(run.decision, correct)
    if as_json:
        document = report_json(workspace.spec.name, spec_path, run.plan.created_at, correct, drifts,
                               _record_location(workspace))
        output_console().rich.out(json.dumps(document, indent=2), highlight=False)
    else:
        for line in report_lines(drifts):
            output_console().print_plain(line)
    for where in post_events(run.plan, workspace.connection.providers, drifts, ui.say):
        error_console().print_plain(f"Event: {where}")
    ok = run.result is None or run.result.ok
    _write_metrics(metrics_file, pushgateway, workspace.spec.name, ok=ok,
                   last_success=time.time() if ok else _seconds(run.record.last_success), drifts=drifts)
    if run.result is not None and run.result.interrupted:
        return INTERRUPTED
    if not ok:
        return FAILED
    counts = summary(drifts)
    return DRIFT if counts[LEFT] or counts[REPORTED] else NO_DRIFT


def check_ignore_rules(workspace) -> None:
    """Each drift.ignore address must be one this spec makes: a typo would silently ignore nothing (exit 3)."""
    from reconciler.providers import table

    spec = workspace.spec
    known = [r.address for r in table.desired_resources(spec)] + [u.address for u in table.unmanaged_parts(spec)]
    problems = []
    for rule in unknown_addresses(spec.drift_ignore, known):
        index = spec.drift_ignore.index(rule)
        field = f"drift.ignore[{index}].address"
        line, column = spec.source.locate(field)
        problems.append(SpecProblem(spec.source.file, line, column, field,
                                    f"{rule.address} is not an address of this spec (addresses: "
                                    f"{', '.join(sorted(known))})"))
    if problems:
        raise SpecError(problems)


def _last_success_on_record(workspace) -> float | None:
    """The last success saxctl/drift.json holds, for a failed run's metrics (a textfile has no push-add to keep it)."""
    from reconciler.drift.record import RECORD_OBJECT, RecordStore

    try:
        record = RecordStore(workspace.connection.admin_record(RECORD_OBJECT), workspace.spec.name).load()
    except SaxctlError:
        return None
    return _seconds(record.last_success)


def _record_location(workspace) -> str:
    from reconciler.drift.record import RECORD_OBJECT

    return workspace.connection.admin_record(RECORD_OBJECT).location


def _write_metrics(path: str | None, gateway: str | None, spec: str, *, ok: bool, last_success: float | None,
                   drifts) -> None:
    if not path and not gateway:
        return
    counts = summary(tuple(drifts))
    run = metrics.RunMetrics(spec, time.time(), last_success, drifted=counts["drifted"],
                             corrected=counts[CORRECTED], errors=0 if ok else 1)
    if path:
        metrics.write_file(path, run)
    if gateway:
        metrics.push(gateway, run)


def _seconds(stamp: str | None) -> float | None:
    return datetime.fromisoformat(stamp).timestamp() if stamp else None
