"""The corrector's metrics in Prometheus format, by prometheus-client, as Prometheus advises for batch jobs.

A textfile for node-exporter's textfile collector (written atomically: the collector never reads half a file), and
a push-add to a Pushgateway: push-add replaces only the metrics it sends, so a failed run (which sends no
last-success time) does not erase the last success, and an alert on `time() - last_success > 2 * schedule` fires
after about two missed runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.errors import SaxctlError

JOB = "saxctl_drift"


@dataclass(frozen=True, slots=True)
class RunMetrics:
    spec: str
    finished_at: float  # Unix seconds
    last_success: float | None  # this run's time when it ran without error, else the last success on record
    drifted: int = 0
    corrected: int = 0
    errors: int = 0


def _registry(run: RunMetrics):
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    labels = ["spec"]

    def gauge(name: str, text: str, value: float) -> None:
        Gauge(name, text, labels, registry=registry).labels(run.spec).set(value)

    gauge("saxctl_drift_last_run_timestamp_seconds", "When saxctl drift last ran (Unix time).", run.finished_at)
    if run.last_success is not None:
        gauge("saxctl_drift_last_success_timestamp_seconds", "When saxctl drift last ran without error.",
              run.last_success)
    gauge("saxctl_drift_drifted_fields", "Fields found drifted by the last run (ignored ones not counted).",
          run.drifted)
    gauge("saxctl_drift_corrected_fields", "Fields the last run set back to the spec.", run.corrected)
    gauge("saxctl_drift_errors", "Errors in the last run (0 or 1).", run.errors)
    return registry


def write_file(path: str, run: RunMetrics) -> None:
    from prometheus_client import write_to_textfile

    try:
        write_to_textfile(path, _registry(run))  # a temporary file renamed over path
    except OSError as error:
        raise SaxctlError(f"cannot write the metrics file {path}: {error.strerror or error}") from None


def push(gateway: str, run: RunMetrics) -> None:
    from prometheus_client import pushadd_to_gateway

    try:
        pushadd_to_gateway(gateway, job=JOB, registry=_registry(run), grouping_key={"spec": run.spec}, timeout=30)
    except OSError as error:
        raise SaxctlError(f"cannot push the metrics to the Pushgateway {gateway}: {error}") from None
