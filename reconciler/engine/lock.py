"""One run at a time: a lock object created only if absent (GCS ifGenerationMatch=0), refreshed while held.

The lock lives in an object the spec manages (the admin bucket), so it can never live inside something the same
run deletes or replaces: before such a change the run moves its lock to another home that survives (the data
bucket), or, when nothing survives (destroying both), releases it and says so. Every run, once it holds the first
home, checks the others, so a run that moved its lock still excludes everyone.
"""

from __future__ import annotations

import datetime
import getpass
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass, fields, replace
from typing import Callable, Protocol, Sequence

from reconciler.engine.address import Address
from reconciler.engine.interrupts import interrupts_deferred
from reconciler.errors import LockedError, SaxctlError
from reconciler.processes import process_alive

HEARTBEAT_S = 30.0  # a live holder rewrites the lock this often
STALE_AFTER = datetime.timedelta(minutes=5)  # not refreshed for this long: its holder stopped


class LockHomeMissing(Exception):
    """The object the lock would live in does not exist (yet)."""


class LockStore(Protocol):
    """Where a lock lives. The GCS implementation is an object in a bucket."""

    location: str  # for messages, e.g. gs://my-sax-admin/saxctl/lock.json

    def create(self, body: bytes) -> int | None:
        """Create the lock object only if none exists; its generation, or None when one exists already.

        Raises LockHomeMissing when the place it lives in does not exist.
        """

    def read(self) -> tuple[bytes, int] | None:
        """The lock object's body and generation, or None when there is none (or no place for one)."""

    def replace(self, body: bytes, generation: int) -> int | None:
        """Rewrite it if it is still that generation; the new generation, or None when it was gone or changed."""

    def delete(self, generation: int) -> bool:
        """Delete it if it is still that generation; False when it was gone or had changed."""


@dataclass(frozen=True, slots=True)
class LockHome:
    address: Address  # the resource the lock object lives in
    store: LockStore


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class LockInfo:
    id: str
    holder: str  # user
    host: str
    pid: int
    created_at: str  # RFC 3339, UTC
    command: str  # e.g. "apply specs/gptj-v5e-2x2.yaml"
    spec: str
    refreshed_at: str = ""  # RFC 3339, UTC; the holder's last heartbeat

    @classmethod
    def for_this_process(cls, command: str, spec: str) -> LockInfo:
        now = _now()
        return cls(id=str(uuid.uuid4()), holder=_user(), host=socket.gethostname(), pid=os.getpid(),
                   created_at=now, command=command, spec=spec, refreshed_at=now)

    def describe(self) -> str:
        return f"{self.holder}@{self.host} (pid {self.pid}) since {self.created_at}, running `saxctl {self.command}`"

    def age_of_refresh(self) -> datetime.timedelta:
        last = datetime.datetime.fromisoformat(self.refreshed_at or self.created_at)
        return datetime.datetime.now(datetime.timezone.utc) - last

    def staleness(self) -> str | None:
        """Why this lock looks abandoned, if it does."""
        if self.host == socket.gethostname() and not process_alive(self.pid):
            return f"process {self.pid} on this host is no longer running"
        age = self.age_of_refresh()
        if age > STALE_AFTER:
            return f"its holder has not refreshed it for {_duration(age)} (a live run refreshes it every " \
                   f"{HEARTBEAT_S:.0f} s)"
        return None


def _duration(age: datetime.timedelta) -> str:
    seconds = int(age.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"


def _encode(info: LockInfo) -> bytes:
    return json.dumps(asdict(info), indent=2).encode()


def _decode(body: bytes, store: LockStore) -> LockInfo:
    try:
        data = json.loads(body)
        known = {f.name for f in fields(LockInfo)}
        return LockInfo(**{key: value for key, value in data.items() if key in known})
    except (ValueError, TypeError, AttributeError) as error:
        raise SaxctlError(f"the lock object {store.location} is not a saxctl lock ({error})") from None


class _Held:
    """One lock object we hold, kept fresh by a heartbeat thread."""

    def __init__(self, store: LockStore, info: LockInfo, generation: int, heartbeat_s: float,
                 on_lost: Callable[[str], None]):
        self.store, self.info, self.generation = store, info, generation
        self._on_lost = on_lost
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(heartbeat_s,), name="lock-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self, every: float) -> None:
        while not self._stop.wait(every):
            with self._mutex:
                if self._stop.is_set():
                    return
                self.info = replace(self.info, refreshed_at=_now())
                try:
                    generation = self.store.replace(_encode(self.info), self.generation)
                    if generation is None:
                        generation = self._still_ours()
                except SaxctlError:
                    continue  # a transient failure: the next beat tries again, long before the lock looks stale
                if generation is None:
                    self._stop.set()
                    self._on_lost(f"the lock {self.store.location} was broken or changed by someone else "
                                  "while this run held it")
                    return
                self.generation = generation

    def _still_ours(self) -> int | None:
        """After a rewrite or delete at our generation was refused: the lock's generation if it still holds our ID
        (our own write went through and only its reply was lost, so the generation moved under us), else None."""
        current = self.store.read()
        if current is None:
            return None
        try:
            holder = _decode(current[0], self.store)
        except SaxctlError:  # someone wrote something else there: not ours any more
            return None
        return current[1] if holder.id == self.info.id else None

    def release(self) -> None:
        """Delete the lock, only at a generation that holds our ID: never a lock someone else took since."""
        with self._mutex:
            self._stop.set()
            if not self.store.delete(self.generation):
                generation = self._still_ours()
                if generation is not None:
                    self.store.delete(generation)


class RunLock:
    """The lock of one run, across its homes (the first is where every run takes it)."""

    def __init__(self, homes: Sequence[LockHome], info: LockInfo, *, timeout_s: float = 0.0,
                 say: Callable[[str], None] = lambda text: None, heartbeat_s: float | None = None,
                 on_lost: Callable[[str], None] | None = None):
        if not homes:
            raise ValueError("a lock needs at least one home")
        self.homes, self.info, self.timeout_s, self._say = list(homes), info, timeout_s, say
        self._heartbeat_s = heartbeat_s if heartbeat_s is not None else float(
            os.environ.get("SAXCTL_LOCK_HEARTBEAT_S", HEARTBEAT_S))
        self._on_lost = on_lost or say
        self._held: dict[Address, _Held] = {}

    @property
    def home(self) -> LockHome:
        return self.homes[0]

    @property
    def held(self) -> bool:
        return bool(self._held)

    def holds(self, address: Address) -> bool:
        """Whether this run's lock lives in `address` now."""
        return address in self._held

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> bool:
        """Take the lock in the first home, waiting up to timeout_s; False when that home does not exist yet."""
        try:
            self._take(self.home, wait=True)
        except LockHomeMissing:
            # A run that stopped while replacing the first home left its lock in another: it is still held there.
            self._check_other_homes()
            return False
        try:
            self._check_other_homes()
        except BaseException:
            self.release()
            raise
        return True

    def _check_other_homes(self) -> None:
        for other in self.homes[1:]:
            current = other.store.read()
            if current is not None:
                holder = _decode(current[0], other.store)
                if holder.id != self.info.id:
                    raise _locked(other.store, holder)

    def release(self) -> None:
        with interrupts_deferred():
            for address in list(self._held):
                self._held.pop(address).release()

    def vacate(self, address: Address) -> str:
        """Before `address` (a home we hold) is deleted or replaced: move the lock to a home that survives.

        Returns what happened, for the person watching."""
        for other in self.homes:
            if other.address != address and other.address not in self._held:
                try:
                    self._take(other, wait=False)
                except LockHomeMissing:
                    continue
                break
        with interrupts_deferred():
            self._held.pop(address).release()
        if self._held:
            moved = ", ".join(held.store.location for held in self._held.values())
            return f"the lock moved to {moved} while {address} is deleted or replaced (it lived there)"
        return f"the lock was released before {address} is deleted (it lived there, and no other home remains)"

    def reoccupy(self) -> None:
        """After a replaced home is back: take the lock there again and leave the temporary home."""
        if self.home.address in self._held:
            return
        self._take(self.home, wait=False)
        with interrupts_deferred():
            for address in [a for a in self._held if a != self.home.address]:
                self._held.pop(address).release()

    def _take(self, home: LockHome, *, wait: bool) -> None:
        deadline = time.monotonic() + (self.timeout_s if wait else 0.0)
        told = False
        while True:
            try:
                with interrupts_deferred():  # a Ctrl-C now is raised once the generation is known: it is released
                    generation = _acquire(home.store, self.info)
                    self._held[home.address] = _Held(home.store, self.info, generation, self._heartbeat_s,
                                                     self._on_lost)
                return
            except LockedError as locked:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
                if not told:
                    self._say(f"waiting up to {self.timeout_s:.0f} s for the lock: {locked.message}")
                    told = True
                time.sleep(min(1.0, left))


def _acquire(store: LockStore, info: LockInfo) -> int:
    body = _encode(info)
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
    else:
        message += f"; last refreshed {_duration(holder.age_of_refresh())} ago"
    return LockedError(message, hint=f"Wait for it (--lock-timeout SECONDS), or if that run is gone, break the lock "
                                     f"with: saxctl force-unlock {holder.id} SPEC")


def force_unlock(homes: Sequence[LockHome], lock_id: str) -> LockInfo:
    """Break the lock, but only if it is the one the user named (so a fresh lock is never broken by mistake)."""
    found = []
    for home in homes:
        current = home.store.read()
        if current is None:
            continue
        holder = _decode(current[0], home.store)
        found.append((home, holder, current[1]))
    if not found:
        raise SaxctlError(f"there is no lock at {', '.join(home.store.location for home in homes)}")
    named = [(home, holder, generation) for home, holder, generation in found if holder.id == lock_id]
    if not named:
        home, holder, _ = found[0]
        raise SaxctlError(
            f"the lock at {home.store.location} has ID {holder.id}, not {lock_id}: it is held by {holder.describe()}"
        )
    for home, holder, generation in named:
        if not home.store.delete(generation):
            raise SaxctlError(f"the lock at {home.store.location} changed while it was being broken; look again")
    return named[0][1]
