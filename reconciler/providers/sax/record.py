"""The ownership record of Sax models: which model ids saxctl published, kept in the admin bucket.

A published model carries no mark of its own (Sax's Model has no labels), so what saxctl published is written down
here, and only what is written here is ever updated or unpublished: a model published by hand is reported, never
touched. One small JSON object, `saxctl/sax-models.json`, read once per run (the run holds the lock) and rewritten
with a generation precondition. A model is recorded before it is published and forgotten after it is unpublished,
so a run killed in between leaves nothing saxctl published unrecorded (as IAM's member record does).
"""

from __future__ import annotations

import json
import threading
from typing import Callable

from reconciler.errors import SaxctlError
from reconciler.providers.google_errors import remote_call

RECORD_OBJECT = "saxctl/sax-models.json"
FORMAT = "saxctl/sax-models"
TIMEOUT = 30  # seconds per request
_WRITE_ROUNDS = 5  # re-reads after a lost generation race before giving up


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


class ModelRecord:
    def __init__(self, storage_client, bucket_name: str, spec_name: str):
        self._blob = storage_client.bucket(bucket_name).blob(RECORD_OBJECT)
        self.spec_name = spec_name  # whose admin bucket it lives in: every model listed is that spec's
        self.location = f"gs://{bucket_name}/{RECORD_OBJECT}"
        self._lock = threading.Lock()
        self._loaded: tuple[frozenset[str], int] | None = None  # (model ids, generation; 0 = no object)

    def models(self) -> frozenset[str]:
        with self._lock:
            return self._state()[0]

    def add(self, model: str) -> None:
        self._update(lambda current: current | {model})

    def remove(self, model: str) -> None:
        self._update(lambda current: current - {model})

    def _state(self) -> tuple[frozenset[str], int]:
        if self._loaded is None:
            self._loaded = self._read()
        return self._loaded

    def _read(self) -> tuple[frozenset[str], int]:
        from google.api_core.exceptions import NotFound

        with remote_call("storage.objects.get", self.location):
            try:
                data = self._blob.download_as_bytes(timeout=TIMEOUT, retry=None)
            except NotFound:  # nothing published by saxctl yet (or no admin bucket yet)
                return frozenset(), 0
        return parse(data, self.location), int(self._blob.generation)

    def _update(self, change: Callable[[frozenset[str]], frozenset[str]]) -> None:
        from google.api_core.exceptions import NotFound, PreconditionFailed

        with self._lock:
            for _ in range(_WRITE_ROUNDS):
                current, generation = self._state()
                wanted = change(current)
                if wanted == current:
                    return
                with remote_call("storage.objects.insert", self.location):
                    try:
                        self._blob.upload_from_string(body(self.spec_name, wanted), content_type="application/json",
                                                      if_generation_match=generation, timeout=TIMEOUT, retry=None)
                    except PreconditionFailed:  # written meanwhile (or our own write whose reply was lost)
                        self._loaded = None
                        continue
                    except NotFound:
                        raise SaxctlError(f"cannot record Sax models in {self.location}: the admin bucket does not "
                                          "exist") from None
                self._loaded = (wanted, int(self._blob.generation))
                return
        raise SaxctlError(f"{self.location} kept changing while saxctl was writing it",
                          hint="Is another saxctl run editing it? Run `saxctl plan` again.")
