"""What the web page's test files (tests/web/test_*.py) share: the Chromium
path, the demo question, a hostile note, a page server on a free localhost
port over the bundled index or over the fake-model index, and one raw HTTP
request.

A test file imports the fixtures it uses from here, so a module-scoped one
(the real engine, its server) is still one per test file, and takes
``GRADIO_WARNINGS`` as its ``pytestmark``; importing this module skips the
file where Gradio is not installed, and hands on ``gr`` and
``gradio_client``. (Not a conftest.py: the test files import ``GATED``
from tests/conftest.py as ``conftest``, which a second conftest module
would shadow.)
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import re
import shutil
from pathlib import Path

import pytest

gr = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")

from dsqa import DSQA  # noqa: E402
from dsqa.web.page import build_page  # noqa: E402
from dsqa.web.server import PageServer, launch  # noqa: E402

#: Each test file's ``pytestmark``: Gradio's queue trips pandas deprecation
#: warnings of its own.
GRADIO_WARNINGS = [
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting'"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Skipped only on a developer machine without Chromium: CI (CI=true) installs
# it in .ci/run, so there a missing browser fails the test instead.
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="no Chromium at /usr/bin/chromium (apt-get install chromium)",
)
QUESTION = "how do overlay networks do service discovery"
CITATION = re.compile(r"notes/[\w.-]+\.md:\d+-\d+")


def _start(page: gr.Blocks, **kwargs) -> PageServer:
    """``page`` served from a thread on a free localhost port."""
    return launch(page, port=0, block=False, **kwargs)


# -- a server over the real bundled index ------------------------------------
@pytest.fixture(scope="module")
def real_engine(tmp_path_factory):
    """The bundled notes and committed index. Should the index be stale (a
    chunking change not yet reindexed; another test flags that), a copy of
    both is brought up to date instead: a test never rewrites index/."""
    engine = DSQA(auto_reindex=False)
    if engine.status().up_to_date:
        return engine
    copy = tmp_path_factory.mktemp("bundled")
    shutil.copytree(engine.settings.corpus_dir, copy / "corpus")
    shutil.copytree(engine.settings.index_dir, copy / "index")
    engine = DSQA(corpus_dir=copy / "corpus", index_dir=copy / "index", auto_reindex=False)
    engine.reindex()
    return engine


@pytest.fixture(scope="module")
def server(real_engine):
    running = _start(build_page(real_engine))
    yield running.url
    running.close()


@pytest.fixture(scope="module")
def client(server):
    return gradio_client.Client(server, verbose=False)



# -- the note-section reader and the rendering --------------------------------
@pytest.fixture
def fake_engine(built):
    return built


HOSTILE = (
    "# Notes <script>window.__pwned = 1; alert('script')</script>\n"
    "<img src=x onerror=\"window.__pwned = 2; alert('onerror')\"> [run](javascript:window.__pwned=3) ![i](https://evil.example/i.png)\n"
    "<svg onload=alert(3)></svg> <iframe src=\"javascript:alert(4)\"></iframe>\n"
    "* [click me](javascript:alert(5)) and [spaced](java\tscript:alert(6)) and [entity](javascript&#58;alert(7))\n"
    "* [data](data:text/html;base64,PHNjcmlwdD5hbGVydCg4KTwvc2NyaXB0Pg==) [vb](vbscript:msgbox(9)) <javascript:alert(10)>\n"
    "* ![x](javascript:alert(11)) ![y](https://evil.example/track.png) [f](file:///etc/passwd)\n"
    "* ${alert(12)} {{constructor.constructor('alert(13)')()}} \"><b onmouseover=alert(14)>hover</b>\n"
    "* [fine](https://example.org/a) [mail](mailto:a@example.org) [relative](other-note.md#part)\n"
)


# -- what the server answers at all: raw HTTP, as another site's page would send it
@pytest.fixture
def fake_server(fake_engine):
    running = _start(build_page(fake_engine))
    yield running
    running.close()


def _request(server: PageServer, method: str, path: str, headers: dict[str, str], body: bytes = b""):
    """One request with exactly these headers (Host included), over a raw
    connection to the server's port: (status, headers in lower case, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        if body or method == "POST":
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


ASK_JSON = "/gradio_api/call/ask_json"
ASK_BODY = json.dumps({"data": ["docker swarm overlay network", 3, None]}).encode()

