"""Which HTTP requests the web page's server answers at all.

A small ASGI middleware that runs before anything else (Gradio included):

* **Host.** On a loopback bind only the names a browser on this machine uses
  for it (``localhost``, ``127.0.0.1``, ``[::1]``, with the port) are served.
  A page elsewhere that rebinds its own name to 127.0.0.1 (DNS rebinding) sends
  its own name as ``Host`` and gets 400.
* **Origin.** A request that a browser marks as coming from another page
  (an ``Origin`` header that is not this server's own) gets 403, unless that
  origin was listed as allowed. Same-origin requests, and clients that send no
  ``Origin`` (curl, ``gradio_client``), pass.
* **Refused paths.** Routes the page never uses (file uploads) get 403.
* **Body size.** A request body over ``max_body_bytes`` gets 413: at once
  when its ``Content-Length`` says so, else as soon as that much has been
  received (the app then sees the client disconnect). The page's own
  requests are a question and a few options, far below the limit; without
  it a 200 MB body was read into memory in full.

It only refuses: the CORS headers for allowed origins are Starlette's
``CORSMiddleware``'s job.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Collection
from typing import Any
from urllib.parse import urlsplit

from ..settings import normalise_origin

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The largest request body served: a question (at most a few thousand
#: characters), the number of passages and a list of note names fit many
#: times over.
MAX_BODY_BYTES = 1024 * 1024

#: The names a browser on this machine uses for a loopback server.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` reaches this machine only."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def loopback_hosts(bound: str, port: int) -> set[str]:
    """The ``Host`` header values that name a loopback server on ``port``:
    the usual loopback names and the bound address itself. A browser leaves
    the port out for port 80, so the bare names count there too."""
    literal = bound.strip().lower()
    if ":" in literal and not literal.startswith("["):
        literal = f"[{literal}]"  # an IPv6 address in a Host header is bracketed
    names = {*LOOPBACK_NAMES, literal}
    hosts = {f"{name}:{port}" for name in names}
    if port == 80:
        hosts |= names
    return hosts


class RequestGuard:
    """Refuse requests by ``Host``, ``Origin`` and path before ``app`` sees them.

    ``allowed_hosts`` is the set of accepted ``Host`` values (lower case,
    with the port), or ``None`` to accept any; ``allowed_origins`` are origins
    (as :func:`normalise_origin` gives them) besides the server's own;
    ``refused_paths`` are paths answered with 403 whatever the method;
    a body over ``max_body_bytes`` is answered with 413.
    """

    def __init__(
        self,
        app: ASGIApp,
        allowed_hosts: Collection[str] | None,
        allowed_origins: Collection[str] = (),
        refused_paths: Collection[str] = (),
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.allowed_hosts = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}
        self.allowed_origins = set(allowed_origins)
        self.refused_paths = {p.rstrip("/") for p in refused_paths}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        why = self.refusal(scope)
        if why is None:
            if scope["type"] == "http":
                await self._capped(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        status, message = why
        if scope["type"] == "websocket":
            # Closing before accepting makes the server answer the handshake with 403.
            await send({"type": "websocket.close", "code": 1008, "reason": message})
            return
        await _plain(send, status, message)

    async def _capped(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app with a ``receive`` that counts the body's bytes: past
        ``max_body_bytes`` the client gets 413 (unless the app has answered
        already), the app sees a disconnect, and what it sends is dropped."""
        received = 0
        refused = False
        started = False

        async def counting_receive() -> dict[str, Any]:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    refused = True
                    if not started:
                        await _plain(send, 413, self._too_large())
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counting_receive, guarded_send)

    def _too_large(self) -> str:
        return f"request body too large (the limit is {self.max_body_bytes:,} bytes)"

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        """``(status, message)`` when the request is refused, else ``None``."""
        headers: dict[str, str] = {}
        for name, value in scope.get("headers", []):
            key = name.decode("latin-1").lower()
            if key in ("host", "origin"):
                if key in headers:  # two Host or Origin headers: ambiguous on purpose
                    return 400, f"more than one {key.title()} header"
                headers[key] = value.decode("latin-1")
        host = headers.get("host", "").strip().lower()
        if self.allowed_hosts is not None and host not in self.allowed_hosts:
            return 400, "this server answers only to localhost, 127.0.0.1 and [::1] (Host header refused)"
        origin = headers.get("origin")
        if origin is not None and not self._origin_allowed(origin, host):
            return 403, "cross-origin request refused: this origin is not allowed (dsqa serve --allow-origin)"
        if scope.get("path", "").rstrip("/") in self.refused_paths:
            return 403, "this page takes no file uploads"
        if scope["type"] == "http" and self._declared_length(scope) > self.max_body_bytes:
            return 413, self._too_large()
        return None

    @staticmethod
    def _declared_length(scope: Scope) -> int:
        """The request's ``Content-Length`` (the largest, if it has several;
        0 when none is given or it is not a number)."""
        lengths = [value for name, value in scope.get("headers", []) if name.lower() == b"content-length"]
        declared = 0
        for value in lengths:
            text = value.decode("latin-1").strip()
            if text.isdigit() and len(text) <= 30:
                declared = max(declared, int(text))
        return declared

    def _origin_allowed(self, origin: str, host: str) -> bool:
        try:
            origin = normalise_origin(origin)
        except ValueError:  # "null" (sandboxed frames, file:// pages) and anything malformed
            return False
        return origin in self.allowed_origins or (bool(host) and urlsplit(origin).netloc == host)


async def _plain(send: Send, status: int, message: str) -> None:
    """Answer ``status`` with ``message`` as plain text."""
    body = (message + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
