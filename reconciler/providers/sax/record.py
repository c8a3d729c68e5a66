"""The ownership record of Sax models: which model ids saxctl published, kept in the admin bucket.

A published model carries no mark of its own (Sax's Model has no labels), so what saxctl published is written down
here, and only what is written here is ever updated or unpublished: a model published by hand is reported, never
touched. One small JSON object, `saxctl/sax-models.json`, one of saxctl's records in the admin bucket: carried to the
new bucket when the admin bucket is replaced, and read from the stash until it is there (gcs/record_object.py). A
model is recorded before it is published and forgotten after it is unpublished.
"""

from __future__ import annotations

import json

from reconciler.errors import SaxctlError
from reconciler.providers.gcs.record_object import RecordObject
from reconciler.providers.gcs.records import AdminRecords

RECORD_OBJECT = "saxctl/sax-models.json"
FORMAT = "saxctl/sax-models"


def parse(body: bytes, location: str) -> frozenset[str]:
    """The model ids a record lists; SaxctlError naming the object when it is not a record saxctl wrote."""
    try:
        document = json.loads(body)
        if document.get("kind") != FORMAT:
            raise ValueError(f"kind is {document.get('kind')!r}, not {FORMAT!r}")
        models = document["models"]
        if not all(isinstance(model, str) for model in models):
            raise ValueError("models must be model ids")
        return frozenset(models)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise SaxctlError(f"{location} is not a record of Sax models saxctl can read: {error}",
                          hint="Restore it from the bucket's versions, or delete it and apply with --adopt to "
                               "record the models again.") from None


def body(spec_name: str, models: frozenset[str]) -> str:
    return json.dumps({"kind": FORMAT, "version": 1, "spec": spec_name, "models": sorted(models)}, indent=1) + "\n"


class ModelRecord(RecordObject[str]):
    what = "Sax models"

    def __init__(self, records: AdminRecords, spec_name: str):
        super().__init__(records, RECORD_OBJECT, spec_name)

    def models(self) -> frozenset[str]:
        return self.read_entries()

    def add(self, model: str) -> None:
        self.update(lambda current: current | {model})

    def remove(self, model: str) -> None:
        self.update(lambda current: current - {model})

    def parse(self, body: bytes, location: str) -> frozenset[str]:
        return parse(body, location)

    def body(self, models: frozenset[str]) -> str:
        return body(self.spec_name, models)
