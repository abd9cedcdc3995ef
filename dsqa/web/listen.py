"""Taking a server's socket before anything slow starts: a port that is
taken or out of range is a one-line error before the model loads. Used by
the page's server and ``dsqa mcp --http``; imports no Gradio."""

from __future__ import annotations

import errno
import socket

from ..errors import DsqaError, InvalidInputError


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port``, or a one-line error."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InvalidInputError(f"port must be a whole number from 0 to 65535, not {port!r}")
    name = host.strip().strip("[]")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise DsqaError(f"cannot listen on {host}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        hint = "; pick another with --port" if exc.errno == errno.EADDRINUSE else ""
        raise DsqaError(f"cannot listen on {host} port {port}: {exc.strerror or exc}{hint}") from None
    return sock
