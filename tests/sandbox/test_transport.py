"""The client's HTTP/1.1 transport against a scripted peer: keep-alive, Connection: close, large
bodies, and clear errors for what it does not speak."""

from __future__ import annotations

import socket
import threading

import pytest

from grpo_fast.sandbox.transport import Connection, ProtocolError


def serve(tmp_path, answers: list[bytes]):
    """A Unix-socket peer that reads one request per answer (head + Content-Length body) and
    sends the scripted bytes; returns the socket path and the list of requests it saw."""
    path = str(tmp_path / "peer.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    seen: list[bytes] = []

    def run() -> None:
        conn, _ = srv.accept()
        f = conn.makefile("rb")
        for answer in answers:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                head += f.readline()
            length = next((int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")), 0)
            seen.append(head + f.read(length))
            conn.sendall(answer)
        conn.close()
        srv.close()

    threading.Thread(target=run, daemon=True).start()
    return path, seen


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def test_keep_alive_requests_and_a_large_body(tmp_path):
    big = b"x" * 200_000
    path, seen = serve(tmp_path, [ok(b"{}"), ok(b'{"a": 1}', b"Connection: close\r\n")])
    c = Connection(unix_path=path, timeout=5)
    assert c.request("GET", "/health") == (200, b"{}", True)
    assert c.request("POST", "/run", big) == (200, b'{"a": 1}', False)
    assert seen[0].startswith(b"GET /health HTTP/1.1\r\n") and seen[1].endswith(big)
    assert b"Content-Length: 200000\r\n" in seen[1]
    c.close()


@pytest.mark.parametrize("answer", [
    b"SSH-2.0-OpenSSH\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{}",
    b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
])
def test_what_it_does_not_speak_is_a_protocol_error(tmp_path, answer):
    path, _ = serve(tmp_path, [answer])
    with pytest.raises(ProtocolError):
        Connection(unix_path=path, timeout=5).request("GET", "/health")


def test_a_peer_closing_mid_response_is_a_connection_error(tmp_path):
    path, _ = serve(tmp_path, [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}"])
    with pytest.raises(ConnectionError):
        Connection(unix_path=path, timeout=5).request("GET", "/health")
