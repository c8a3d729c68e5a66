import datetime
import json
import os
import threading

import pytest

from reconciler.engine.address import Address
from reconciler.engine.lock import LockHome, LockHomeMissing, LockInfo, RunLock, force_unlock
from reconciler.errors import LockedError, SaxctlError


class MemoryLockStore:
    """The LockStore contract over a dict, with GCS's generation semantics."""

    def __init__(self, name="admin", exists=True):
        self.location = f"mem://{name}/saxctl/lock.json"
        self.exists = exists
        self.object: tuple[bytes, int] | None = None
        self.generation = 0
        self.lose_create_reply = False
        self.lose_replace_replies = 0  # rewrites that happen but whose reply the client never sees
        self.writes = 0

    def create(self, body):
        if not self.exists:
            raise LockHomeMissing(self.location)
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

    def replace(self, body, generation):
        if self.object is None or self.object[1] != generation:
            return None
        self.generation += 1
        self.writes += 1
        self.object = (body, self.generation)
        if self.lose_replace_replies:  # the heartbeat's write happened; a retry of it then met a new generation
            self.lose_replace_replies -= 1
            return None
        return self.generation

    def delete(self, generation):
        if self.object is None or self.object[1] != generation:
            return False
        self.object = None
        return True

    def holder(self) -> dict | None:
        return json.loads(self.object[0]) if self.object else None


ADMIN, DATA = Address("mem.bucket", "admin"), Address("mem.bucket", "data")


def info(**overrides):
    fresh = LockInfo.for_this_process("apply spec.yaml", "demo")
    return LockInfo(**{**{name: getattr(fresh, name) for name in LockInfo.__slots__}, **overrides})


def run_lock(*stores, lock_info=None, **options):
    homes = [LockHome(address, store) for address, store in zip((ADMIN, DATA), stores)]
    return RunLock(homes, lock_info or info(), heartbeat_s=options.pop("heartbeat_s", 3600), **options)


def test_lock_is_held_during_the_block_and_released_after():
    store = MemoryLockStore()
    with run_lock(store) as lock:
        assert lock.acquire()
        assert store.holder()["id"] == lock.info.id
    assert store.object is None


def test_lock_is_released_on_error_and_on_ctrl_c():
    store = MemoryLockStore()
    for interruption in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(interruption)):
            with run_lock(store) as lock:
                lock.acquire()
                raise interruption
        assert store.object is None


def test_second_run_fails_at_once_naming_the_holder():
    store = MemoryLockStore()
    first = info(holder="alice", host="laptop-a", pid=4242)
    with run_lock(store, lock_info=first) as lock:
        lock.acquire()
        with pytest.raises(LockedError) as caught:
            run_lock(store).acquire()
    assert "alice@laptop-a (pid 4242)" in caught.value.message
    assert f"lock ID {first.id}" in caught.value.message
    assert "last refreshed 0 s ago" in caught.value.message
    assert caught.value.hint.endswith(f"saxctl force-unlock {first.id} SPEC")


def test_second_run_waits_up_to_the_timeout_and_gets_the_lock_when_it_is_released():
    store = MemoryLockStore()
    first = run_lock(store)
    first.acquire()
    said = []

    def release_once_waiting(text):
        said.append(text)
        threading.Thread(target=first.release).start()

    with run_lock(store, timeout_s=30, say=release_once_waiting) as second:
        assert second.acquire()
        assert store.holder()["id"] == second.info.id
    assert said and said[0].startswith("waiting up to 30 s for the lock: another run holds the lock")


def test_a_lock_left_by_a_dead_process_on_this_host_is_reported_stale():
    store = MemoryLockStore()
    dead = info(pid=2**22 + 12345)  # above pid_max: no such process
    store.create(json.dumps({name: getattr(dead, name) for name in LockInfo.__slots__}).encode())
    with pytest.raises(LockedError, match=f"It looks stale: process {dead.pid} on this host is no longer running"):
        run_lock(store).acquire()


def test_a_lock_whose_holder_stopped_refreshing_is_reported_stale_with_its_age():
    store = MemoryLockStore()
    old = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=42)).isoformat()
    silent = info(host="another-host", created_at=old, refreshed_at=old)
    store.create(json.dumps({name: getattr(silent, name) for name in LockInfo.__slots__}).encode())
    with pytest.raises(LockedError, match="It looks stale: its holder has not refreshed it for 42 min"):
        run_lock(store).acquire()


def test_a_live_holder_refreshes_its_lock():
    store = MemoryLockStore()
    with run_lock(store, heartbeat_s=0.01) as lock:
        lock.acquire()
        first = store.holder()["refreshed_at"]
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=10)
        while store.writes < 2 and datetime.datetime.now() < deadline:
            threading.Event().wait(0.01)
        assert store.writes >= 2, "the heartbeat rewrote the lock"
        assert store.holder()["id"] == lock.info.id and store.holder()["refreshed_at"] >= first
    assert store.object is None, "released at the generation the heartbeat last wrote"


def test_a_lost_heartbeat_reply_is_recognised_as_our_own_lock_and_released_at_its_generation():
    store = MemoryLockStore()
    lost = []
    with run_lock(store, heartbeat_s=0.01, on_lost=lost.append) as lock:
        lock.acquire()
        store.lose_replace_replies = 3
        _wait_until(lambda: store.lose_replace_replies == 0 and store.writes >= 4)
        assert lost == [], "our own write whose reply was lost is not someone else's"
        assert store.holder()["id"] == lock.info.id
    assert store.object is None, "released at the generation the lost write made"


def test_a_lock_broken_while_held_is_reported_by_the_heartbeat():
    store = MemoryLockStore()
    lost = threading.Event()
    said = []
    with run_lock(store, heartbeat_s=0.01, on_lost=lambda text: (said.append(text), lost.set())) as lock:
        lock.acquire()
        force_unlock([LockHome(ADMIN, store)], lock.info.id)
        assert lost.wait(10), "the heartbeat never reported the broken lock"
        assert said == ["the lock mem://admin/saxctl/lock.json was broken or changed by someone else while this run "
                        "held it"]
        taker = run_lock(store)
        assert taker.acquire(), "the lock is free for another run"
    assert store.holder()["id"] == taker.info.id, "our release left the new holder's lock alone"
    taker.release()


def test_release_after_another_run_took_the_lock_leaves_theirs():
    store = MemoryLockStore()
    first = run_lock(store)
    first.acquire()
    force_unlock([LockHome(ADMIN, store)], first.info.id)
    second = run_lock(store)
    second.acquire()
    first.release()
    assert store.holder()["id"] == second.info.id
    second.release()


def _wait_until(condition, timeout_s: float = 10) -> None:
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=timeout_s)
    while not condition():
        assert datetime.datetime.now() < deadline, "condition not met in time"
        threading.Event().wait(0.01)


def test_a_lost_create_reply_is_recognised_as_our_own_lock():
    store = MemoryLockStore()
    store.lose_create_reply = True
    with run_lock(store) as lock:
        assert lock.acquire()
        assert store.object is not None
    assert store.object is None


def test_no_lock_is_taken_where_the_home_does_not_exist_yet():
    assert run_lock(MemoryLockStore(exists=False)).acquire() is False


def test_a_run_that_moved_its_lock_still_excludes_others():
    admin, data = MemoryLockStore("admin"), MemoryLockStore("data")
    mover = run_lock(admin, data)
    mover.acquire()
    assert "the lock moved to mem://data/saxctl/lock.json" in mover.vacate(ADMIN)
    assert admin.object is None and data.holder()["id"] == mover.info.id
    with pytest.raises(LockedError, match="another run holds the lock mem://data/saxctl/lock.json"):
        run_lock(admin, data).acquire()
    assert admin.object is None, "the refused run released what it had taken"
    mover.reoccupy()
    assert admin.holder()["id"] == mover.info.id and data.object is None
    mover.release()


def test_with_no_other_home_left_the_lock_is_released_before_its_home_goes():
    admin, data = MemoryLockStore("admin"), MemoryLockStore("data", exists=False)
    lock = run_lock(admin, data)
    lock.acquire()
    assert lock.vacate(ADMIN) == ("the lock was released before mem.bucket.admin is deleted (it lived there, and no "
                                  "other home remains)")
    assert admin.object is None and not lock.held


def test_force_unlock_breaks_only_the_named_lock():
    store = MemoryLockStore()
    crashed = info(pid=os.getpid())
    store.create(json.dumps({name: getattr(crashed, name) for name in LockInfo.__slots__}).encode())
    homes = [LockHome(ADMIN, store)]
    with pytest.raises(SaxctlError, match=f"has ID {crashed.id}, not wrong-id"):
        force_unlock(homes, "wrong-id")
    assert force_unlock(homes, crashed.id).id == crashed.id
    assert store.object is None
    with pytest.raises(SaxctlError, match="there is no lock"):
        force_unlock(homes, crashed.id)


def test_a_lock_left_in_another_home_is_found_while_the_first_home_is_missing():
    """A run killed while replacing the admin bucket left its lock in the data bucket, and no admin bucket."""
    admin, data = MemoryLockStore("admin"), MemoryLockStore("data")
    mover = run_lock(admin, data)
    mover.acquire()
    mover.vacate(ADMIN)
    admin.exists = False
    with pytest.raises(LockedError, match="another run holds the lock mem://data/saxctl/lock.json"):
        run_lock(admin, data).acquire()
    mover.release()
    assert run_lock(admin, data).acquire() is False, "nothing held: the home is only missing"
