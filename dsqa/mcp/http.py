"""``dsqa mcp --http``: the same MCP server over streamable HTTP, at
``http://HOST:PORT/mcp``, behind the page's
:class:`~dsqa.web.request_guard.RequestGuard`: on a loopback bind (the
default) only the loopback Host names are served, a request from another
site's page (a foreign ``Origin``) is refused unless that origin is listed,
and request bodies are capped. The SDK's own Host/Origin check is off: it
would let any page served from localhost call the server, which the guard
does not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from ..engine import DSQA
from ..settings import normalise_origins
from ..web.listen import listen
from ..web.request_guard import RequestGuard, is_loopback, loopback_hosts
from .server import build_server, warm_up

log = logging.getLogger("dsqa")

DEFAULT_PORT = 7861
#: Where the MCP endpoint is served.
PATH = "/mcp"


def build_http_app(engine: DSQA, host: str, port: int, allowed_origins: Iterable[str] = ()):
    """The ASGI app serving ``engine``'s MCP server over streamable HTTP at
    :data:`PATH`, behind the request guard for ``host``:``port``."""
    from mcp.server.transport_security import TransportSecuritySettings

    # Any: Starlette types ASGI messages as MutableMapping, the guard as dict.
    app: Any = build_server(engine).streamable_http_app(
        streamable_http_path=PATH,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),  # the guard's job
        host=host,
    )
    return RequestGuard(
        app,
        allowed_hosts=loopback_hosts(host, port) if is_loopback(host) else None,
        allowed_origins=normalise_origins(allowed_origins),
    )


def serve_http(engine: DSQA, host: str = "127.0.0.1", port: int = DEFAULT_PORT, allowed_origins: Iterable[str] | None = None) -> None:
    """Serve ``engine``'s MCP server over streamable HTTP until interrupted.
    The port is taken first (0: any free one), so a busy one is a one-line
    error; the address is printed on stderr. The origins allowed are
    ``allowed_origins``, else the engine's ``Settings.allow_origins``."""
    import uvicorn

    origins = normalise_origins(engine.settings.allow_origins if allowed_origins is None else allowed_origins)
    sock = listen(host, port)
    sock.listen(128)  # a client told the address below may connect at once: it waits in the backlog
    port = sock.getsockname()[1]
    if not is_loopback(host):
        log.warning("listening on %s: anyone who can reach it can read the notes through the MCP tools", host)
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    log.info("MCP server at http://%s:%d%s (Ctrl-C to stop)", shown, port, PATH)
    app = build_http_app(engine, host, port, origins)
    loading = warm_up(engine)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="none", lifespan="on", timeout_graceful_shutdown=2))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        loading.join()
