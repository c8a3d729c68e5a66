"""The lock's generation checks against the sandbox's GCS, which refuses a delete at a stale generation as GCS does:
a release never deletes a lock another run took since, and force-unlock never breaks a lock that moved under it."""

from __future__ import annotations

import json

import pytest

from reconciler.engine.address import Address
from reconciler.engine.lock import LockHome, LockInfo, RunLock, force_unlock
from reconciler.errors import SaxctlError
from reconciler.providers.gcs.lock_store import GcsLockStore

ADMIN = Address("gcs.bucket", "admin")


@pytest.fixture
def store(gcs, names):
    gcs.create_bucket(names["admin"], location="US")
    return GcsLockStore(gcs, names["admin"])


def run_lock(store, command: str) -> RunLock:
    return RunLock([LockHome(ADMIN, store)], LockInfo.for_this_process(command, "spec"), heartbeat_s=3600)


def holder_id(store) -> str | None:
    current = store.read()
    return None if current is None else json.loads(current[0])["id"]


def test_a_release_after_another_run_took_the_lock_leaves_theirs(store):
    first = run_lock(store, "apply first.yaml")
    assert first.acquire()
    force_unlock([LockHome(ADMIN, store)], first.info.id)
    second = run_lock(store, "apply second.yaml")
    assert second.acquire()
    first.release()
    assert holder_id(store) == second.info.id, "the first run's release deleted only its own generation"
    second.release()
    assert store.read() is None


class _RefreshedAfterEachRead:
    """The store as force-unlock sees it while the holder's heartbeat rewrites the lock right after each read."""

    def __init__(self, store: GcsLockStore):
        self._store = store
        self.location = store.location

    def read(self):
        current = self._store.read()
        if current is not None:
            self._store.replace(current[0], current[1])
        return current

    def delete(self, generation: int) -> bool:
        return self._store.delete(generation)


def test_force_unlock_does_not_break_a_lock_that_moved_while_it_was_being_broken(store):
    holder = run_lock(store, "apply spec.yaml")
    assert holder.acquire()
    with pytest.raises(SaxctlError, match="changed while it was being broken; look again"):
        force_unlock([LockHome(ADMIN, _RefreshedAfterEachRead(store))], holder.info.id)
    assert holder_id(store) == holder.info.id
    force_unlock([LockHome(ADMIN, store)], holder.info.id)
    assert store.read() is None
    holder.release()
