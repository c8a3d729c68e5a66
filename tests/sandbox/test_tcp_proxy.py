"""The TCP proxy the GKE emulator hands out in front of the apiserver: bytes pass through, and its rules reset, drop
or lose the reply of connections, the same ones for the same seed."""

from __future__ import annotations

import os
import socket
import socketserver
import threading

import pytest

from reconciler.sandbox.tcp_proxy import TcpProxy

pytestmark = pytest.mark.timeout(60)


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.server.received.append(data)  # type: ignore[attr-defined]
            self.request.sendall(data)


@pytest.fixture
def echo():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    server.received = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(echo):
    made = TcpProxy(echo.server_address[:2])
    yield made
    made.close()


def exchange(proxy: TcpProxy, payload: bytes) -> bytes:
    """Send payload through the proxy, half-close, and read until the far side closes; a reset raises OSError
    (ECONNRESET, or ENOTCONN when it comes before the half-close)."""
    with socket.create_connection(proxy.address, timeout=10) as connection:
        connection.sendall(payload)
        connection.shutdown(socket.SHUT_WR)
        received = b""
        while data := connection.recv(65536):
            received += data
        return received


def test_bytes_pass_through_both_ways_unchanged(proxy):
    payload = os.urandom(300_000)
    assert exchange(proxy, payload) == payload
    assert exchange(proxy, b"again") == b"again"
    assert proxy.rules() == []


def test_a_reset_rule_resets_the_connection_then_its_count_is_spent(proxy, echo):
    proxy.set_rules([{"kind": "reset", "count": 1}])
    with pytest.raises(OSError):
        exchange(proxy, b"lost")
    assert echo.received == []  # nothing reached the upstream
    assert exchange(proxy, b"after") == b"after"


def test_a_drop_after_the_reply_lets_the_request_through_and_loses_its_reply(proxy, echo):
    proxy.set_rules([{"kind": "drop", "after_reply": True, "count": 1}])
    assert exchange(proxy, b"served") == b""  # closed without a word
    assert b"".join(echo.received) == b"served"


def test_the_same_seed_fails_the_same_connections(echo):
    def failing(seed: int) -> list[int]:
        made = TcpProxy(echo.server_address[:2])
        try:
            made.set_rules([{"kind": "reset", "probability": 0.3, "seed": seed}])
            found = []
            for number in range(20):
                try:
                    exchange(made, b"x")
                except OSError:
                    found.append(number)
            return found
        finally:
            made.close()

    first = failing(11)
    assert first == failing(11) and 0 < len(first) < 20
    assert first != failing(12)


def test_bad_rules_change_nothing_and_say_which_field(proxy):
    proxy.set_rules([{"kind": "drop", "count": 2}])
    with pytest.raises(ValueError, match="kind must be one of"):
        proxy.set_rules([{"kind": "stall", "delay_s": 1}, {"kind": "explode"}])
    assert [rule["kind"] for rule in proxy.rules()] == ["drop"]
