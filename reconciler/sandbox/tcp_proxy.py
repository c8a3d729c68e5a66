"""A TCP proxy that fails connections on purpose: in front of the sandbox's kube-apiserver, the path a cluster's
clients take when the GKE emulator hands the proxy out as the cluster's endpoint (chaos runs).

Bytes pass through unchanged: TLS stays end to end, and the apiserver's certificate names the proxy's address (the
same host, another port). A connection may meet one rule when it is accepted: `reset` (closed with a TCP RST),
`drop` (closed without a word: a FIN), or `stall` (`delay_s` before a byte passes; a reset or a drop may stall first
too). With `after_reply`, a reset or drop lets the client's bytes through and strikes as the apiserver's reply
starts: the request was served, its reply is lost. A rule with a probability below 1 decides from its seed and the
connection's number (faults.seeded_draw), so the same seed fails the same connections in order.
"""

from __future__ import annotations

import itertools
import logging
import selectors
import socket
import struct
import threading
from dataclasses import dataclass, fields

from reconciler.sandbox.base.faults import fault_seed, seeded_draw, spend

log = logging.getLogger(__name__)
KINDS = ("reset", "drop", "stall")
_CHUNK = 65536
_CONNECT_TIMEOUT_S = 10.0


@dataclass
class ConnectionRule:
    kind: str
    probability: float = 1.0
    delay_s: float = 0.0
    after_reply: bool = False
    count: int | None = None  # None: every matching connection
    seed: int | None = None  # for probability < 1; drawn when not given, and shown, so that a run can be replayed
    id: int = 0
    hits: int = 0

    @classmethod
    def from_dict(cls, raw: object) -> "ConnectionRule":
        """Validate one rule from JSON; ValueError names the bad field."""
        if not isinstance(raw, dict):
            raise ValueError(f"a connection rule must be a JSON object, got {type(raw).__name__}")
        known = {spec.name for spec in fields(cls)} - {"id", "hits"}
        if set(raw) - known:
            raise ValueError(f"unknown connection rule field(s) {sorted(set(raw) - known)}; known: {sorted(known)}")
        rule = cls(**raw)
        if rule.kind not in KINDS:
            raise ValueError(f"connection rule kind must be one of {list(KINDS)}, got {rule.kind!r}")
        if not (isinstance(rule.probability, (int, float)) and 0 < rule.probability <= 1):
            raise ValueError(f"connection rule probability must be in (0, 1], got {rule.probability!r}")
        if not (isinstance(rule.delay_s, (int, float)) and 0 <= rule.delay_s <= 300):
            raise ValueError(f"connection rule delay_s must be between 0 and 300, got {rule.delay_s!r}")
        if rule.kind == "stall" and (rule.delay_s == 0 or rule.after_reply):
            raise ValueError("a stall needs a delay_s above 0, and has no after_reply (it fails nothing)")
        if rule.count is not None and (not isinstance(rule.count, int) or rule.count < 1):
            raise ValueError(f"connection rule count must be a positive integer, got {rule.count!r}")
        if rule.seed is not None and (not isinstance(rule.seed, int) or isinstance(rule.seed, bool)):
            raise ValueError(f"connection rule seed must be an integer, got {rule.seed!r}")
        if rule.probability < 1 and rule.seed is None:
            rule.seed = fault_seed()
        return rule

    def to_json(self) -> dict:
        return {spec.name: getattr(self, spec.name) for spec in fields(self)}


class TcpProxy:
    """127.0.0.1:port (or the upstream's host) → upstream, each accepted connection served by a thread of its own."""

    def __init__(self, upstream: tuple[str, int], host: str = "127.0.0.1", port: int = 0):
        self.upstream = upstream
        self._listener = socket.create_server((host, port))
        self.address = self._listener.getsockname()[:2]
        self._rules: list[ConnectionRule] = []
        self._ids = itertools.count(1)
        self._connections = itertools.count()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"

    def set_rules(self, raw_rules: list) -> list[dict]:
        """Replace the rules; every rule is validated before any is used, so a bad list changes nothing."""
        if not isinstance(raw_rules, list):
            raise ValueError("the rules must be a JSON list")
        rules = [ConnectionRule.from_dict(raw) for raw in raw_rules]
        with self._lock:
            for rule in rules:
                rule.id = next(self._ids)
            self._rules = rules
        return self.rules()

    def rules(self) -> list[dict]:
        with self._lock:
            return [rule.to_json() for rule in self._rules]

    def close(self) -> None:
        self._listener.close()

    def _match(self, number: int) -> ConnectionRule | None:
        """The first rule with budget left whose draw for this connection fires."""
        with self._lock:
            for rule in self._rules:
                if rule.probability < 1 and seeded_draw(rule.seed, "connection", number) >= rule.probability:
                    continue
                spend(self._rules, rule)
                return rule
        return None

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            rule = self._match(next(self._connections))
            threading.Thread(target=self._serve, args=(client, rule), name="tcp-proxy-conn", daemon=True).start()

    def _serve(self, client: socket.socket, rule: ConnectionRule | None) -> None:
        with client:
            if rule is not None and rule.delay_s:
                threading.Event().wait(rule.delay_s)  # the stall itself
            fails = rule if rule is not None and rule.kind != "stall" else None
            if fails is not None and not fails.after_reply:
                _fail(client, fails.kind)
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=_CONNECT_TIMEOUT_S)
            except OSError as error:
                log.warning("tcp proxy: cannot reach %s:%d: %s", *self.upstream, error)
                _fail(client, "reset")
                return
            with upstream:
                upstream.settimeout(None)
                _relay(client, upstream, fails)


def _relay(client: socket.socket, upstream: socket.socket, lose_reply: ConnectionRule | None) -> None:
    """Copy bytes both ways until both sides have closed; `lose_reply` strikes at the upstream's first bytes."""
    peer = {client: upstream, upstream: client}
    with selectors.DefaultSelector() as selector:
        for side in peer:
            selector.register(side, selectors.EVENT_READ)
        open_sides = 2
        while open_sides:
            for key, _ in selector.select():
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = source.recv(_CHUNK)
                except OSError:
                    data = b""
                if data and source is upstream and lose_reply is not None:
                    _fail(client, lose_reply.kind)
                    return
                try:
                    if data:
                        peer[source].sendall(data)
                        continue
                    selector.unregister(source)
                    open_sides -= 1
                    peer[source].shutdown(socket.SHUT_WR)  # pass the half-close on
                except OSError:
                    return


def _fail(connection: socket.socket, kind: str) -> None:
    """A reset (RST: linger 0, then the caller's close) or a drop (FIN both ways, nothing said)."""
    try:
        if kind == "reset":
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
