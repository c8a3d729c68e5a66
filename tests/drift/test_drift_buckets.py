"""`saxctl drift` through the CLI on the sandbox's buckets: report, correct, ignore rules, the fight-loop stop, the
lock, the record in the admin bucket and the metrics."""

from __future__ import annotations

import json
import textwrap
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from cli_runner import buckets_spec, drift_report, saxctl, saxctl_background, wait_for_lock

RECORD = "saxctl/drift.json"


@pytest.fixture
def applied(sandbox, tmp_path, names):
    spec = buckets_spec(tmp_path, names["spec"], names["admin"], names["data"])
    done = saxctl("apply", "--auto-approve", str(spec), env=sandbox.env)
    assert done.code == 0, done.text
    return spec


def gauges(text: str) -> dict[str, float]:
    """name → value of the metrics in Prometheus text format, as a scraper reads them."""
    from prometheus_client.parser import text_string_to_metric_families

    return {sample.name: sample.value for family in text_string_to_metric_families(text) for sample in family.samples}


def relabel(gcs, bucket: str, team: str) -> None:
    data = gcs.get_bucket(bucket)
    data.labels = {**data.labels, "team": team}
    data.patch()


def test_label_drift_reported_then_corrected_recorded_and_measured(sandbox, applied, names, gcs, tmp_path):
    quiet = saxctl("drift", str(applied), env=sandbox.env)
    assert quiet.code == 0, quiet.text
    assert "No drift" in quiet.out

    relabel(gcs, names["data"], "by-hand")
    reported = saxctl("drift", "--json", str(applied), env=sandbox.env)
    assert reported.code == 2, reported.text
    document = drift_report(reported)
    assert document["summary"] == {"drifted": 1, "corrected": 0, "reported": 1, "left": 0, "ignored": 0, "settling": 0}
    [entry] = document["drifts"]
    assert (entry["address"], entry["field"], entry["desired"], entry["live"], entry["outcome"]) == (
        "gcs.bucket.data", "labels.team", "ml", "by-hand", "reported")
    assert entry["changed_by"]["updated"] == gcs.get_bucket(names["data"]).updated.isoformat()
    assert gcs.get_bucket(names["data"]).labels["team"] == "by-hand", "a report changes nothing"
    assert gcs.bucket(names["admin"]).get_blob(RECORD) is None, "a report writes no record"

    metrics = tmp_path / "drift.prom"
    corrected = saxctl("drift", "--correct", "--metrics-file", str(metrics), str(applied), env=sandbox.env)
    assert corrected.code == 0, corrected.text
    assert "corrected gcs.bucket.data labels.team" in corrected.out
    assert gcs.get_bucket(names["data"]).labels["team"] == "ml"
    assert gcs.bucket(names["admin"]).get_blob("saxctl/lock.json") is None, "the lock is released"
    record = json.loads(gcs.bucket(names["admin"]).blob(RECORD).download_as_bytes())
    assert record["kind"] == "saxctl/drift" and record["last_success"] == record["last_run"]["at"]
    assert record["fields"]["gcs.bucket.data labels.team"]["streak"] == 1
    text = metrics.read_text()
    assert f'saxctl_drift_corrected_fields{{spec="{names["spec"]}"}} 1.0' in text
    assert f'saxctl_drift_drifted_fields{{spec="{names["spec"]}"}} 1.0' in text
    assert f'saxctl_drift_errors{{spec="{names["spec"]}"}} 0.0' in text
    assert "saxctl_drift_last_success_timestamp_seconds{" in text

    after = saxctl("drift", "--correct", str(applied), env=sandbox.env)
    assert after.code == 0 and "No drift" in after.out, after.text
    record = json.loads(gcs.bucket(names["admin"]).blob(RECORD).download_as_bytes())
    assert record["fields"] == {}, "a field found in place ends its streak"


def test_ignore_rules_are_obeyed_by_report_and_correction(sandbox, applied, names, gcs):
    with_rule = applied.read_text() + "drift:\n  ignore:\n    - {address: gcs.bucket.data, fields: [labels.team]}\n"
    applied.write_text(with_rule)
    relabel(gcs, names["data"], "autoscaler-owned")
    ignored = saxctl("drift", "--correct", "--json", str(applied), env=sandbox.env)
    assert ignored.code == 0, ignored.text
    [entry] = drift_report(ignored)["drifts"]
    assert (entry["field"], entry["outcome"]) == ("labels.team", "ignored")
    assert gcs.get_bucket(names["data"]).labels["team"] == "autoscaler-owned"

    applied.write_text(with_rule.replace("address: gcs.bucket.data", "address: gcs.bucket.dta"))
    typo = saxctl("drift", str(applied), env=sandbox.env)
    assert typo.code == 3, typo.text
    assert f"{applied}:10:17: drift.ignore[0].address: gcs.bucket.dta is not an address of this spec" in typo.err


def test_a_field_set_back_on_each_run_is_left_to_the_other_controller(sandbox, applied, names, gcs):
    for run in range(2):
        relabel(gcs, names["data"], f"controller-{run}")
        fought = saxctl("drift", "--correct", "--fight-limit", "2", str(applied), env=sandbox.env)
        assert fought.code == 0, fought.text
        assert gcs.get_bucket(names["data"]).labels["team"] == "ml"
    relabel(gcs, names["data"], "controller-2")
    stopped = saxctl("drift", "--correct", "--fight-limit", "2", "--json", str(applied), env=sandbox.env)
    assert stopped.code == 2, stopped.text
    [entry] = drift_report(stopped)["drifts"]
    assert entry["outcome"] == "left"
    assert entry["why"].startswith("stopped: saxctl set it back on each of the last 2 runs")
    assert gcs.get_bucket(names["data"]).labels["team"] == "controller-2", "no third correction"


def test_a_run_under_a_held_lock_waits_then_fails_naming_the_holder(sandbox, applied, names, gcs, tmp_path):
    metrics = tmp_path / "drift.prom"
    assert saxctl("drift", "--correct", str(applied), env=sandbox.env).code == 0
    record = json.loads(gcs.bucket(names["admin"]).blob(RECORD).download_as_bytes())
    relabel(gcs, names["data"], "by-hand")
    sandbox.inject_fault(method="PATCH", path=f"^/storage/v1/b/{names['data']}$", delay_s=6, count=1)
    holder = saxctl_background("apply", "--auto-approve", str(applied), env=sandbox.env)
    try:
        wait_for_lock(sandbox, names["admin"])
        refused = saxctl("drift", "--correct", "--lock-timeout", "1", "--metrics-file", str(metrics), str(applied),
                         env=sandbox.env)
        assert refused.code == 1, refused.text
        assert f"another run holds the lock gs://{names['admin']}/saxctl/lock.json" in refused.err
        assert f"(pid {holder.pid})" in refused.err
        assert "Traceback" not in refused.err
        measured = metrics.read_text()
        assert f'saxctl_drift_errors{{spec="{names["spec"]}"}} 1.0' in measured, "a failed run is measured too"
        success = datetime.fromisoformat(record["last_success"]).timestamp()
        assert gauges(measured)["saxctl_drift_last_success_timestamp_seconds"] == success, "the success on record stays"
        waited = saxctl("drift", "--correct", "--lock-timeout", "60", str(applied), env=sandbox.env)
        assert waited.code == 0 and "No drift" in waited.out, waited.text
    finally:
        out, err = holder.communicate(timeout=60)
    assert holder.returncode == 0, out + err


class _Pushgateway(BaseHTTPRequestHandler):
    received: list[tuple[str, str, str]] = []

    def do_POST(self):  # push-add is a POST; a PUT would replace the whole group
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        self.received.append((self.command, self.path, body))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_metrics_are_pushed_with_push_add(sandbox, applied, names, gcs):
    server = HTTPServer(("127.0.0.1", 0), _Pushgateway)
    _Pushgateway.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        relabel(gcs, names["data"], "by-hand")
        url = f"http://127.0.0.1:{server.server_port}"
        pushed = saxctl("drift", "--correct", "--pushgateway", url, str(applied), env=sandbox.env)
        assert pushed.code == 0, pushed.text
    finally:
        server.shutdown()
    [(method, path, body)] = _Pushgateway.received
    assert (method, path) == ("POST", f"/metrics/job/saxctl_drift/spec/{names['spec']}")
    assert "saxctl_drift_corrected_fields" in body and "saxctl_drift_last_success_timestamp_seconds" in body
    assert "# TYPE saxctl_drift_last_run_timestamp_seconds gauge" in body
