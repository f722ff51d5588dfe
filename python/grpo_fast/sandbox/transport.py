"""A small HTTP/1.1 keep-alive connection for talking JSON to grpo-sandboxd.

`http.client` spends more time than the daemon does on a trivial run: it builds headers through
several layers and parses every response head with the `email` package. The daemon's answers are
plain (`Content-Length`, no chunking), so one request is a `sendall` and a response is a status
line, a few header lines and a body of known length. Anything unexpected raises
`ProtocolError`, never a silent misread.
"""

from __future__ import annotations

import socket
import ssl


class ProtocolError(ConnectionError):
    """The peer answered something that is not the HTTP/1.1 this client speaks."""


MAX_HEAD = 64 * 1024


class Connection:
    """One persistent connection, over a Unix socket path or to "host:port"."""

    def __init__(self, unix_path: str | None = None, tcp: tuple[str, int] | None = None, timeout: float = 3600.0,
                 connect_timeout: float = 10.0, token: str | None = None, tls: ssl.SSLContext | None = None):
        """token: sent as `Authorization: Bearer <token>` with every request.
        tls: TCP only; the handshake verifies the daemon's certificate against the host name."""
        if (unix_path is None) == (tcp is None):
            raise ValueError("give exactly one of unix_path and tcp")
        if token is not None and (not token.isascii() or not token.isprintable() or " " in token):
            raise ValueError("a sandbox token is one word of visible ASCII")
        self._unix_path, self._tcp, self._timeout = unix_path, tcp, timeout
        if tls is not None and tcp is None:
            raise ValueError("TLS is for TCP connections only")
        self._auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self._tls = tls
        # A host that drops packets would otherwise hold a connect for the whole request timeout.
        self._connect_timeout = min(connect_timeout, timeout)
        self._sock: socket.socket | None = None
        self._file = None

    def _connect(self) -> None:
        if self._unix_path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self._connect_timeout)
            try:
                sock.connect(self._unix_path)
            except OSError:
                sock.close()
                raise
        else:
            assert self._tcp is not None
            sock = socket.create_connection(self._tcp, timeout=self._connect_timeout)  # IPv4, IPv6, names
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                try:  # the handshake, within the connect timeout
                    sock = self._tls.wrap_socket(sock, server_hostname=self._tcp[0])
                except BaseException:
                    sock.close()
                    raise
        sock.settimeout(self._timeout)
        self._sock, self._file = sock, sock.makefile("rb")

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes, bool]:
        """Sends one request and reads its response: (status, body, server keeps the connection)."""
        if self._sock is None:
            self._connect()
        assert self._sock is not None and self._file is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: sandboxd\r\n{self._auth}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        data = (head + "\r\n").encode("latin-1")
        try:
            self._sock.sendall(data + body if body is not None and len(body) < 65536 else data)
            if body is not None and len(body) >= 65536:
                self._sock.sendall(body)
            return self._read_response()
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError) as exc:  # the daemon closed it, as over TCP
            raise ConnectionResetError(f"the daemon closed the connection ({exc})") from exc

    def _read_response(self) -> tuple[int, bytes, bool]:
        f = self._file
        line = f.readline(MAX_HEAD)
        if not line:
            raise ConnectionResetError("the daemon closed the connection")
        if line[:2] in (b"\x15\x03", b"\x16\x03"):  # a TLS record (an alert, a handshake)
            raise ProtocolError("this port speaks TLS: connect with tls=True (and ca_file=), or a tls: endpoint")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {line[:80]!r}")
        status = int(parts[1])
        length, keep = None, parts[0] == b"HTTP/1.1"
        seen = len(line)
        while True:
            line = f.readline(MAX_HEAD)
            seen += len(line)
            if not line or seen > MAX_HEAD:
                raise ProtocolError("response head ended early or is too long")
            if line in (b"\r\n", b"\n"):
                break
            name, sep, value = line.partition(b":")
            if not sep:
                raise ProtocolError(f"bad header line {line[:80]!r}")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"connection":
                keep = value.strip().lower() != b"close"
            elif name == b"transfer-encoding":
                raise ProtocolError("chunked responses are not supported")
        if length is None:
            raise ProtocolError("response without Content-Length")
        payload = f.read(length)
        if len(payload) != length:
            raise ConnectionResetError("the daemon closed the connection mid-response")
        return status, payload, keep

    def set_timeout(self, timeout: float) -> None:
        """The limit on each wait for the daemon from now on (the connect's stays the smaller)."""
        self._timeout = timeout
        self._connect_timeout = min(self._connect_timeout, timeout)
        if self._sock is not None:
            self._sock.settimeout(timeout)

    def abort(self) -> None:
        """From another thread: ends a request in progress here (its wait raises at once)."""
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._sock is not None:
            self._sock.close()
        self._sock = self._file = None
