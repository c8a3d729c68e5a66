import json
import os

import pytest

from reconciler.engine.lock import LockInfo, force_unlock, held_lock
from reconciler.errors import LockedError, SaxctlError


class MemoryLockStore:
    """The LockStore contract over a dict, with GCS's generation semantics."""

    location = "mem://admin/saxctl/lock.json"

    def __init__(self):
        self.object: tuple[bytes, int] | None = None
        self.generation = 0
        self.lose_create_reply = False

    def create(self, body):
        if self.object is not None:
            return None
        self.generation += 1
        self.object = (body, self.generation)
        if self.lose_create_reply:  # the write happened but the client saw a failure and retried
            self.lose_create_reply = False
            return None
        return self.generation

    def read(self):
        return self.object

    def delete(self, generation):
        if self.object is None or self.object[1] != generation:
            return False
        self.object = None
        return True


def info(**overrides):
    return LockInfo(**{**_fields(LockInfo.for_this_process("apply spec.yaml", "demo")), **overrides})


def _fields(lock_info):
    return {name: getattr(lock_info, name) for name in LockInfo.__slots__}


def test_lock_is_held_during_the_block_and_released_after():
    store = MemoryLockStore()
    with held_lock(store, info()) as mine:
        assert json.loads(store.object[0])["id"] == mine.id
    assert store.object is None


def test_lock_is_released_on_error_and_on_ctrl_c():
    store = MemoryLockStore()
    for interruption in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(interruption)):
            with held_lock(store, info()):
                raise interruption
        assert store.object is None


def test_second_run_fails_at_once_naming_the_holder():
    store = MemoryLockStore()
    first = info(holder="alice", host="laptop-a", pid=4242)
    with held_lock(store, first):
        with pytest.raises(LockedError) as caught:
            with held_lock(store, info()):
                pass
    assert f"alice@laptop-a (pid 4242)" in caught.value.message
    assert f"lock ID {first.id}" in caught.value.message
    assert caught.value.hint == f"If that run is gone, break the lock with: saxctl force-unlock {first.id} SPEC"


def test_a_lock_left_by_a_dead_process_on_this_host_is_reported_stale():
    store = MemoryLockStore()
    dead = info(pid=2**22 + 12345)  # above pid_max: no such process
    store.create(json.dumps(_fields(dead)).encode())
    with pytest.raises(LockedError, match=f"It looks stale: process {dead.pid} on this host is no longer running"):
        with held_lock(store, info()):
            pass


def test_a_lost_create_reply_is_recognised_as_our_own_lock():
    store = MemoryLockStore()
    store.lose_create_reply = True
    with held_lock(store, info()):
        assert store.object is not None
    assert store.object is None


def test_force_unlock_breaks_only_the_named_lock():
    store = MemoryLockStore()
    crashed = info(pid=os.getpid())
    store.create(json.dumps(_fields(crashed)).encode())
    with pytest.raises(SaxctlError, match=f"has ID {crashed.id}, not wrong-id"):
        force_unlock(store, "wrong-id")
    assert force_unlock(store, crashed.id).id == crashed.id
    assert store.object is None
    with pytest.raises(SaxctlError, match="there is no lock"):
        force_unlock(store, crashed.id)
