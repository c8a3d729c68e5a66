"""One run at a time: a lock object created only if absent (GCS ifGenerationMatch=0), released on every exit."""

from __future__ import annotations

import datetime
import getpass
import json
import os
import socket
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Iterator, Protocol

from reconciler.engine.interrupts import interrupts_deferred
from reconciler.errors import LockedError, SaxctlError
from reconciler.processes import process_alive

STALE_AFTER = datetime.timedelta(hours=6)


class LockStore(Protocol):
    """Where the lock lives. The GCS implementation is an object in the admin bucket."""

    location: str  # for messages, e.g. gs://my-sax-admin/saxctl/lock.json

    def create(self, body: bytes) -> int | None:
        """Create the lock object only if none exists; its generation, or None when one exists already."""

    def read(self) -> tuple[bytes, int] | None:
        """The lock object's body and generation, or None when there is none."""

    def delete(self, generation: int) -> bool:
        """Delete it if it is still that generation; False when it was gone or had changed."""


@dataclass(frozen=True, slots=True)
class LockInfo:
    id: str
    holder: str  # user
    host: str
    pid: int
    created_at: str  # RFC 3339, UTC
    command: str  # e.g. "apply specs/gptj-v5e-2x2.yaml"
    spec: str

    @classmethod
    def for_this_process(cls, command: str, spec: str) -> LockInfo:
        return cls(
            id=str(uuid.uuid4()),
            holder=_user(),
            host=socket.gethostname(),
            pid=os.getpid(),
            created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            command=command,
            spec=spec,
        )

    def describe(self) -> str:
        return f"{self.holder}@{self.host} (pid {self.pid}) since {self.created_at}, running `saxctl {self.command}`"

    def staleness(self) -> str | None:
        """Why this lock looks abandoned, if it does."""
        if self.host == socket.gethostname() and not process_alive(self.pid):
            return f"process {self.pid} on this host is no longer running"
        created = datetime.datetime.fromisoformat(self.created_at)
        age = datetime.datetime.now(datetime.timezone.utc) - created
        if age > STALE_AFTER:
            return f"it was taken {age.total_seconds() / 3600:.0f} hours ago"
        return None


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"


def _decode(body: bytes, store: LockStore) -> LockInfo:
    try:
        return LockInfo(**json.loads(body))
    except (ValueError, TypeError) as error:
        raise SaxctlError(f"the lock object {store.location} is not a saxctl lock ({error})") from None


@contextmanager
def held_lock(store: LockStore, info: LockInfo) -> Iterator[LockInfo]:
    """Hold the lock for the duration of the block; released on success, error and Ctrl-C alike."""
    generation = None
    try:
        with interrupts_deferred():  # a Ctrl-C now is raised once `generation` is known, so it is released
            generation = _acquire(store, info)
        yield info
    finally:
        if generation is not None:
            with interrupts_deferred():
                store.delete(generation)


def _acquire(store: LockStore, info: LockInfo) -> int:
    body = json.dumps(asdict(info), indent=2).encode()
    generation = store.create(body)
    if generation is None:
        current = store.read()
        holder = _decode(current[0], store) if current else None
        if holder is not None and holder.id == info.id:  # our create went through, its reply was lost
            generation = current[1]
        elif current is None:  # released between our create and read: one more try is enough
            generation = store.create(body)
        if generation is None:
            raise _locked(store, holder)
    return generation


def _locked(store: LockStore, holder: LockInfo | None) -> LockedError:
    if holder is None:
        return LockedError(f"the lock {store.location} is held by another run")
    stale = holder.staleness()
    message = f"another run holds the lock {store.location}: {holder.describe()}, lock ID {holder.id}"
    if stale:
        message += f". It looks stale: {stale}"
    return LockedError(message, hint=f"If that run is gone, break the lock with: saxctl force-unlock {holder.id} SPEC")


def force_unlock(store: LockStore, lock_id: str) -> LockInfo:
    """Break the lock, but only if it is the one the user named (so a fresh lock is never broken by mistake)."""
    current = store.read()
    if current is None:
        raise SaxctlError(f"there is no lock at {store.location}")
    body, generation = current
    holder = _decode(body, store)
    if holder.id != lock_id:
        raise SaxctlError(
            f"the lock at {store.location} has ID {holder.id}, not {lock_id}: it is held by {holder.describe()}"
        )
    if not store.delete(generation):
        raise SaxctlError(f"the lock at {store.location} changed while it was being broken; look again")
    return holder
