"""`saxctl/drift.json` in the admin bucket: the corrector's memory between runs, and how it sees a fight.

It holds the last run (when, and what it found and did), the last successful run, and per field the runs that
corrected it in a row. A field corrected on each of the last N runs is being changed back by something else
(another controller, an autoscaler, a person's script): the corrector stops correcting it and says so, rather than
fight (Argo CD's self-heal loop). The streak ends when a run finds the field in place.

Written only under the run's lock, with a generation precondition, like saxctl/lock.json (the same store).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from reconciler.drift.classify import CORRECTED, FieldDrift
from reconciler.engine.lock import LockHomeMissing, LockStore
from reconciler.errors import SaxctlError

RECORD_OBJECT = "saxctl/drift.json"
FORMAT = "saxctl/drift"
KEPT_RUNS = 10  # correction times kept per field


@dataclass(frozen=True, slots=True)
class DriftRecord:
    spec: str
    last_run: Mapping[str, Any] | None = None
    last_success: str | None = None
    fields: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # key → {"streak", "corrected_runs", "by"}

    def stopped(self, limit: int) -> dict[str, str]:
        """Fields corrected on each of the last `limit` runs: key → why the corrector now leaves them."""
        return {key: (f"stopped: saxctl set it back on each of the last {entry['streak']} runs and "
                      f"{entry.get('by') or 'something else'} keeps changing it; make the spec agree, or add a "
                      "drift.ignore rule")
                for key, entry in self.fields.items() if limit > 0 and entry.get("streak", 0) >= limit}

    def after_run(self, at: str, drifts: Iterable[FieldDrift], ok: bool, summary: Mapping[str, int]) -> DriftRecord:
        """The record once this run is done: streaks grow for what it corrected, end for what stayed in place."""
        fields: dict[str, dict[str, Any]] = {}
        for drift in drifts:
            entry = dict(self.fields.get(drift.key, {"streak": 0, "corrected_runs": []}))
            if drift.outcome == CORRECTED:
                entry["streak"] = entry.get("streak", 0) + 1
                entry["corrected_runs"] = (list(entry.get("corrected_runs", [])) + [at])[-KEPT_RUNS:]
                who = drift.changed_by or {}
                entry["by"] = who.get("manager") or entry.get("by")
            fields[drift.key] = entry
        return DriftRecord(self.spec, {"at": at, "ok": ok, **summary}, at if ok else self.last_success, fields)

    def to_json(self) -> bytes:
        return (json.dumps({"kind": FORMAT, "version": 1, "spec": self.spec, "last_run": self.last_run,
                            "last_success": self.last_success, "fields": self.fields}, indent=1,
                           sort_keys=True) + "\n").encode()


class RecordStore:
    """Reads and writes the record through a LockStore (create if none, else replace at the generation read)."""

    def __init__(self, store: LockStore, spec: str):
        self._store, self._spec = store, spec
        self._generation = 0
        self.location = store.location

    def load(self) -> DriftRecord:
        found = self._store.read()
        if found is None:
            return DriftRecord(self._spec)
        body, self._generation = found
        try:
            document = json.loads(body)
            if document.get("kind") != FORMAT:
                raise ValueError(f"kind is {document.get('kind')!r}, not {FORMAT!r}")
            return DriftRecord(self._spec, document.get("last_run"), document.get("last_success"),
                               dict(document.get("fields") or {}))
        except (ValueError, TypeError, AttributeError) as error:
            raise SaxctlError(f"{self.location} is not a drift record saxctl can read: {error}",
                              hint="Delete it: the next run starts a new one (fight-loop streaks start again).")

    def save(self, record: DriftRecord) -> bool:
        """Write it; False when there is nowhere to write (no admin bucket yet)."""
        body = record.to_json()
        try:
            written = (self._store.create(body) if self._generation == 0
                       else self._store.replace(body, self._generation))
        except LockHomeMissing:
            return False
        if written is None:
            raise SaxctlError(f"{self.location} changed while this run held the lock",
                              hint="Is a saxctl older than the lock writing it? Run `saxctl drift` again.")
        self._generation = written
        return True
