"""Serving the page: Gradio's app mounted behind
:class:`~dsqa.web.request_guard.RequestGuard`, on a socket taken before the model
loads, from this thread (:func:`serve`) or a background one (:func:`launch`).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from .._version import __version__
from ..engine import DSQA
from ..errors import DsqaError
from ..settings import normalise_origins
from .api import api_router
from .assets import CSS, HEAD, ON_LOAD, THEME
from .listen import listen
from .page import build_page, engine_of
from .request_guard import RequestGuard, is_loopback, loopback_hosts

log = logging.getLogger("dsqa")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860

#: Gradio routes that take files: the page has no file input, so they are
#: refused outright (and ``max_file_size=0`` caps them should one slip by).
UPLOAD_PATHS = ("/gradio_api/upload", "/gradio_api/process_recording")


@dataclass
class PageServer:
    """A running page server (what :func:`launch` returns)."""

    url: str
    host: str
    port: int
    page: gr.Blocks
    app: Any
    server: Any  # uvicorn.Server
    thread: threading.Thread | None = None

    def close(self) -> None:
        """Stop the server and Gradio's queue; returns when the port is free."""
        self.page._queue.close()
        for route in self.app.routes:  # Gradio's own app, mounted at "/": its heartbeats stop
            stop = getattr(getattr(route, "app", None), "stop_event", None)
            if stop is not None:
                stop.set()
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)


def build_app(page: gr.Blocks, host: str, port: int, allowed_origins: Iterable[str] = ()) -> Any:
    """The ASGI app serving ``page`` on ``host``:``port``: Gradio's app
    mounted at ``/``, and the JSON API of :mod:`dsqa.web.api` at ``/api``
    (over the engine the page was built for), behind
    :class:`~dsqa.web.request_guard.RequestGuard`.

    On a loopback ``host`` only the Host names ``localhost``, ``127.0.0.1``
    and ``[::1]`` (with ``port``) are served; on any other host every Host is
    (whoever can reach the address can use the page). Cross-origin requests
    are refused unless their origin is in ``allowed_origins``; those get CORS
    headers (no credentials). Uploads are refused.
    """
    from fastapi import FastAPI
    from starlette.middleware.cors import CORSMiddleware

    origins = normalise_origins(allowed_origins)
    # The JSON API (dsqa.web.api) is documented at /openapi.json and /api/docs.
    app = FastAPI(title="dsqa", version=__version__, docs_url="/api/docs", redoc_url=None, openapi_url="/openapi.json")
    engine = engine_of(page)
    if engine is not None:
        app.include_router(api_router(engine))
    # A parent app with its own CORSMiddleware turns Gradio's off (it echoes
    # any origin when the Host is not a localhost name).
    app.add_middleware(CORSMiddleware, allow_origins=list(origins), allow_methods=["GET", "POST"], allow_headers=["*"])
    app.add_middleware(
        RequestGuard,
        allowed_hosts=loopback_hosts(host, port) if is_loopback(host) else None,
        allowed_origins=origins,
        refused_paths=UPLOAD_PATHS,
    )  # added last, so it runs first
    return gr.mount_gradio_app(
        app,
        page,
        path="/",
        server_name=host,
        server_port=port,
        ssr_mode=False,
        theme=THEME,
        css=CSS,
        head=HEAD,
        js=ON_LOAD,
        footer_links=["api"],
        show_error=True,
        max_file_size=0,
    )


def launch(
    page: gr.Blocks,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    allowed_origins: Iterable[str] | None = None,
    block: bool = True,
) -> PageServer:
    """Serve ``page`` on ``host``:``port`` (0: a free port): system-font
    theme, no telemetry, no server-side rendering (it needs Node and the
    network), the checks of :func:`build_app`. The origins allowed to call
    it are ``allowed_origins``, else ``Settings.allow_origins`` of the
    engine the page was built for. With ``block`` it serves until
    interrupted; without, it serves from a thread and returns at once (call
    ``close()`` on the result). A port that is taken or out of range, or a bad
    origin, is a one-line ``DsqaError``."""
    if allowed_origins is None:
        engine = engine_of(page)
        allowed_origins = engine.settings.allow_origins if engine is not None else ()
    origins = normalise_origins(allowed_origins)
    return _run(page, listen(host, port), host, origins, block=block)


def serve(
    engine: DSQA, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, allowed_origins: Iterable[str] | None = None
) -> None:
    """Build the page for ``engine`` and serve it until interrupted (what
    ``dsqa serve`` runs). The port is taken first, so a busy one fails before
    the model loads. The origins allowed to call it are ``allowed_origins``,
    else the engine's ``Settings.allow_origins``."""
    origins = normalise_origins(engine.settings.allow_origins if allowed_origins is None else allowed_origins)
    sock = listen(host, port)
    try:
        page = build_page(engine)
    except BaseException:
        sock.close()
        raise
    _run(page, sock, host, origins, block=True)


def _run(page: gr.Blocks, sock: socket.socket, host: str, origins: tuple[str, ...], *, block: bool) -> PageServer:
    import uvicorn

    port = sock.getsockname()[1]
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    url = f"http://{'localhost' if shown in ('0.0.0.0', '[::]') else shown}:{port}/"
    if not is_loopback(host):
        log.warning(
            "listening on %s: anyone who can reach it can use the page, under any host name "
            "(the Host check guards loopback binds only)",
            host,
        )
    app = build_app(page, host, port, origins)
    # No WebSocket protocol: the page does not use one.
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2, ws="none"))
    running = PageServer(url=url, host=host, port=port, page=page, app=app, server=server)
    if block:
        print(f"dsqa: the page is at {url} (Ctrl-C to stop)", flush=True)
        try:
            server.run(sockets=[sock])
        finally:
            running.close()
            sock.close()
        return running
    running.thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="dsqa-page", daemon=True)
    running.thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not running.thread.is_alive() or time.monotonic() > deadline:
            running.close()
            sock.close()
            raise DsqaError(f"the page's server on {host} port {port} did not start")
        time.sleep(0.01)
    return running
