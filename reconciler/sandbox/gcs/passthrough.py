"""Stream one HTTP exchange from an emulator's handler to the server behind it and back, Host header kept."""

from __future__ import annotations

import http.client
import socket
from http.server import BaseHTTPRequestHandler

# Hop-by-hop headers (RFC 9110 §7.6.1) belong to each connection; Host is deliberately NOT among them: fake-gcs-server
# builds the resumable-upload Location from it, so keeping it keeps every chunk coming through us (RECIPES §2).
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                         "transfer-encoding", "upgrade", "proxy-connection"})
_COPY_CHUNK = 1 << 20  # upload chunks can be hundreds of MB: never hold a whole body


class NoDelayConnection(http.client.HTTPConnection):
    """Streamed request bodies go out in several writes; Nagle would hold each small one for the peer's ACK."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def forward_request(handler: BaseHTTPRequestHandler,
                    connection: http.client.HTTPConnection) -> http.client.HTTPResponse:
    """Send the handler's request (line, headers, streamed body) on `connection`; return the upstream response."""
    connection.putrequest(handler.command, handler.path, skip_host=True, skip_accept_encoding=True)
    for name, value in handler.headers.items():
        if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
            connection.putheader(name, value)
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        body = _read_chunked(handler)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        return connection.getresponse()
    length = int(handler.headers.get("Content-Length") or 0)
    if length or handler.command in ("POST", "PUT", "PATCH"):
        connection.putheader("Content-Length", str(length))
    connection.endheaders()
    remaining = length
    while remaining:
        block = handler.rfile.read(min(_COPY_CHUNK, remaining))
        if not block:
            raise ConnectionResetError("the client closed the connection mid-body")
        connection.send(block)
        remaining -= len(block)
    return connection.getresponse()


def forward_response(handler: BaseHTTPRequestHandler, response: http.client.HTTPResponse) -> None:
    """Relay status, end-to-end headers and the streamed body; re-chunk a body of unknown length."""
    handler.send_response(response.status, response.reason)
    for name, value in response.getheaders():
        if name.lower() not in _HOP_BY_HOP:
            handler.send_header(name, value)
    bodyless = handler.command == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200
    rechunk = response.getheader("Content-Length") is None and not bodyless
    if rechunk:
        handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    if bodyless:
        return
    while block := response.read(_COPY_CHUNK):
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(block), block) if rechunk else block)
    if rechunk:
        handler.wfile.write(b"0\r\n\r\n")


def _read_chunked(handler: BaseHTTPRequestHandler) -> bytes:
    """A chunked request body, whole: rare from the Google clients (they send Content-Length), so kept simple."""
    parts = []
    while True:
        size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
        if size == 0:
            while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts)
        parts.append(handler.rfile.read(size))
        handler.rfile.readline()
