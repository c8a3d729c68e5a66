"""Resumable uploads whose sessions outlive the process: a re-run after kill -9 continues a large object mid-way.

The session URL and the acknowledged offset are kept in a file beside the staging manifest (the URL alone lets
anyone holding it write that one object, so the file is private to the user and never printed). The protocol is
GCS's JSON API resumable upload: POST to start, PUT chunks with Content-Range, PUT `bytes */SIZE` to ask where
the server stands; 308 means "go on", 200/201 "done", 404/410 "session gone, start again".
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from reconciler.errors import SaxctlError

SESSIONS_NAME = "saxctl-upload-sessions.json"
CHUNK_BYTES = 32 << 20  # a multiple of 256 KiB, as GCS requires; a kill costs at most this much per object
TIMEOUT = 120  # seconds per request
_RANGE = re.compile(r"bytes=0-(\d+)")
_GONE = (404, 410)


class SessionStore:
    """The open sessions of one staging copy, by path inside the checkpoint; thread-safe, saved on every change."""

    def __init__(self, path: Path, destination: str):
        self._path, self._destination = path, destination
        self._lock = threading.Lock()
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError):
            saved = {}
        same_destination = isinstance(saved, dict) and saved.get("destination") == destination
        self._sessions: dict[str, dict] = dict(saved.get("sessions", {})) if same_destination else {}

    def get(self, relative: str, size: int, crc32c: str) -> dict | None:
        """The session of this very file (same size and crc32c), or None."""
        with self._lock:
            session = self._sessions.get(relative)
        return session if session and (session["size"], session["crc32c"]) == (size, crc32c) else None

    def put(self, relative: str, url: str, size: int, crc32c: str, offset: int) -> None:
        with self._lock:
            self._sessions[relative] = {"url": url, "size": size, "crc32c": crc32c, "offset": offset}
            self._save()

    def drop(self, relative: str) -> None:
        with self._lock:
            if self._sessions.pop(relative, None) is not None:
                self._save()

    def _save(self) -> None:
        partial = self._path.with_name(self._path.name + ".partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump({"destination": self._destination, "sessions": self._sessions}, handle, indent=1)
        os.replace(partial, self._path)


@dataclass(frozen=True, slots=True)
class Sent:
    resource: dict  # the object resource GCS returned for the finished upload
    bytes_sent: int  # in this process: what a resumed upload saved is the difference to the size


@contextlib.contextmanager
def clean_errors() -> Iterator[None]:
    """Re-raise a storage client error with the server's message alone: the client's own message embeds the request
    URL (with an upload session's id) and its internals, e.g. ('Request failed with status code', 403, ...)."""
    from google.api_core.exceptions import GoogleAPICallError
    from google.cloud.storage.exceptions import DataCorruption, InvalidResponse

    try:
        yield
    except (GoogleAPICallError, InvalidResponse, DataCorruption) as error:
        response = getattr(error, "response", None)
        if response is None or not hasattr(response, "status_code"):
            raise
        raise api_error(response) from None


def api_error(response) -> Exception:
    """The google-api-core exception for an HTTP error reply, with the server's own message (never the URL)."""
    from google.api_core import exceptions as api_exceptions

    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = (response.text or response.reason or "").strip()[:200]
    return api_exceptions.from_http_status(response.status_code, message)


def _start(client, bucket_name: str, blob_name: str, size: int, crc32c: str) -> str:
    blob = client.bucket(bucket_name).blob(blob_name)
    blob.crc32c = crc32c  # sent with the session: GCS refuses to finish an object whose bytes do not match
    with clean_errors():
        return blob.create_resumable_upload_session(size=size, client=client, timeout=TIMEOUT, checksum=None)


def _offset(response) -> int:
    match = _RANGE.fullmatch(response.headers.get("Range", ""))
    return int(match.group(1)) + 1 if match else 0


def _query(session, url: str, size: int):
    """Where the server stands: (offset, None) to go on, (size, resource) when done, None when the session is gone."""
    response = session.put(url, headers={"Content-Range": f"bytes */{size}", "Content-Length": "0"}, timeout=TIMEOUT)
    if response.status_code == 308:
        return _offset(response), None
    if response.status_code in (200, 201):
        return size, response.json()
    if response.status_code in _GONE:
        return None
    raise api_error(response)


def send(client, bucket_name: str, blob_name: str, file: Path, size: int, crc32c: str, store: SessionStore,
         relative: str, on_sent: Callable[[int], None]) -> Sent:
    """Upload one file through a resumable session, continuing a saved one where the server says it stopped."""
    from google.cloud.storage.retry import DEFAULT_RETRY

    session_http = client._http  # the client's authorized session (google-cloud-core's transport for every call)
    saved = store.get(relative, size, crc32c)
    url = saved["url"] if saved else None
    offset: int | None = None  # None: ask the server before sending
    sent = reported = restarts = 0
    resource = None

    def report(position: int) -> None:
        """Progress in bytes the server holds: what an earlier process sent counts as done once."""
        nonlocal reported
        if position > reported:
            on_sent(position - reported)
            reported = position

    def restart() -> None:
        nonlocal url, restarts
        restarts += 1
        if restarts > 2:
            raise SaxctlError(f"gs://{bucket_name}/{blob_name}: GCS dropped the upload session {restarts} times")
        url = None

    def step() -> None:
        nonlocal url, offset, sent, resource
        if url is None:
            url, offset = _start(client, bucket_name, blob_name, size, crc32c), 0
            store.put(relative, url, size, crc32c, 0)
        if offset is None:
            where = _query(session_http, url, size)
            if where is None:  # expired or unknown to the server: start over
                return restart()
            offset, resource = where
            report(offset)
            if resource is not None:
                return None
        with open(file, "rb") as handle:
            handle.seek(offset)
            data = handle.read(min(CHUNK_BYTES, size - offset))
        headers = {"Content-Range": f"bytes {offset}-{offset + len(data) - 1}/{size}",
                   "Content-Length": str(len(data))}
        offset = None  # unknown until the server answers: a retry asks first
        response = session_http.put(url, data=data, headers=headers, timeout=TIMEOUT)
        if response.status_code in _GONE:
            return restart()
        if response.status_code not in (200, 201, 308):
            raise api_error(response)
        sent += len(data)
        if response.status_code == 308:
            offset = _offset(response)
            store.put(relative, url, size, crc32c, offset)
        else:
            offset, resource = size, response.json()
        report(offset)
        return None

    retrying_step = DEFAULT_RETRY.with_timeout(300)(step)  # 429/5xx and dropped connections
    while resource is None:
        retrying_step()
    store.drop(relative)
    if resource.get("crc32c") != crc32c:
        raise SaxctlError(f"gs://{bucket_name}/{blob_name}: GCS reports crc32c {resource.get('crc32c')}, "
                          f"the file has {crc32c}")
    return Sent(resource, sent)
