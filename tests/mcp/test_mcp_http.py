"""``dsqa mcp --http``: the server over streamable HTTP, started as the
command (fake model, as in test_mcp.py) on a free loopback port; the SDK's
own client calls it, and httpx checks the request guard in front of it."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import anyio
import httpx
import pytest

pytest.importorskip("mcp", reason="the MCP SDK (dsqa[mcp], in the dev extra)")

from mcp import Client  # noqa: E402
from test_mcp import LAUNCHER, QUESTION, ROOT, _env, check_cited_lines, payload  # noqa: E402

ADDRESS = re.compile(r"MCP server at (http://\S+/mcp)")


@pytest.fixture
def http_server(cli_built):
    args = ["mcp", "--http", "--port", "0", "--corpus", str(cli_built.corpus_dir), "--index", str(cli_built.index_dir), "--model", "fake-hash"]
    proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        seen = []
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            seen.append(line)
            found = ADDRESS.search(line)
            if found:
                yield found.group(1), cli_built
                break
            if not line and proc.poll() is not None:
                pytest.fail("dsqa mcp --http did not start: " + "".join(seen))
        else:
            pytest.fail("no address from dsqa mcp --http: " + "".join(seen))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_tools_over_streamable_http(http_server):
    url, settings = http_server

    async def body() -> dict:
        async with Client(url, read_timeout_seconds=120) as client:
            tools = [t.name for t in (await client.list_tools()).tools]
            assert tools == ["ask", "search", "read_note", "status"]
            bad = await client.call_tool("read_note", {"note": "../../etc/passwd"})
            assert bad.is_error and "leads out of the notes folder" in bad.content[0].text
            return payload(await client.call_tool("ask", {"question": QUESTION, "k": 3}))

    answer = anyio.run(body)
    assert len(answer["passages"]) == 3
    for p in answer["passages"]:
        check_cited_lines(settings.corpus_dir, p)


def test_the_request_guard_stands_in_front(http_server):
    url, _ = http_server
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
             "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}
    accept = {"Accept": "application/json, text/event-stream"}
    r = httpx.post(url, json=hello, headers={**accept, "Host": f"evil.example:{port}"})
    assert r.status_code == 400 and "Host header refused" in r.text
    r = httpx.post(url, json=hello, headers={**accept, "Origin": "http://localhost:3000"})
    assert r.status_code == 403 and "cross-origin request refused" in r.text
    r = httpx.post(url, content=b"x" * (2 * 1024 * 1024), headers={**accept, "Content-Type": "application/json"})
    assert r.status_code == 413
    r = httpx.post(url, json=hello, headers=accept)
    assert r.status_code == 200, r.text
