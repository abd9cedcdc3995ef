"""An ``ask`` through ``dsqa mcp`` against the same call through the library,
in one run: ``python -m bench.mcp_latency [--calls N] [--json]``; and a
transcript of one stdio session: ``python -m bench.mcp_latency --transcript FILE``.

Both run on a copy of the bundled notes and committed index (nothing here
touches the repository's index/), with the real model and the default
encoder. The server is the ``dsqa`` command of this interpreter's
environment started by the MCP SDK's own client, as an assistant starts it;
the library calls are :meth:`DSQA.ask` in this process, alone (as a
script calls it) and after :meth:`DSQA.refresh` (what the tool runs: it
compares the notes with the index before every call). They take turns,
call by call, so that the load of a shared machine falls on both alike; both
are warm (the first call of each is not timed). Reported: medians and the
ratio, plus the server's start (spawn to the end of the handshake) and its
first, untimed call.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from bench.common import DSQA, ROOT, median, percentile

QUESTION = "how do overlay networks do service discovery"


def notes_copy(tmp: Path) -> tuple[Path, Path]:
    corpus, index = tmp / "corpus", tmp / "index"
    shutil.copytree(ROOT / "corpus", corpus)
    shutil.copytree(ROOT / "index", index, ignore=shutil.ignore_patterns(".lock", ".tmp-*"))
    return corpus, index


def _env() -> dict[str, str]:
    """The server imports dsqa from this checkout, offline."""
    keep = ("HOME", "PATH", "XDG_DATA_HOME", "DSQA_ENCODER")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env["HF_HUB_OFFLINE"] = "1"
    return env


def server_args(corpus: Path, index: Path) -> list[str]:
    return ["mcp", "--corpus", str(corpus), "--index", str(index), "--no-auto-reindex"]


def measure(corpus: Path, index: Path, calls: int, k: int = 5) -> dict[str, Any]:
    from mcp import Client, StdioServerParameters

    from dsqa import DSQA as Engine

    engine = Engine(corpus_dir=corpus, index_dir=index, auto_reindex=False)
    engine.ask(QUESTION, k=k)  # model and index loaded before timing
    params = StdioServerParameters(command=DSQA, args=server_args(corpus, index), env=_env())
    library_ms: list[float] = []
    refreshed_ms: list[float] = []
    mcp_ms: list[float] = []
    validation_ms: list[float] = []

    async def main() -> dict[str, float]:
        spawned = time.perf_counter()
        async with Client(params, mode="legacy", read_timeout_seconds=300) as client:
            ready = time.perf_counter()
            first = await client.call_tool("ask", {"question": QUESTION, "k": k})
            first_done = time.perf_counter()
            assert not first.is_error, first.content
            expected = engine.ask(QUESTION, k=k).to_dict()
            assert first.structured_content == expected, "the MCP answer differs from the library's"
            for _ in range(calls):
                started = time.perf_counter()
                engine.ask(QUESTION, k=k)
                library_ms.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                engine.refresh()  # what the tool runs: the notes compared with the index first
                engine.ask(QUESTION, k=k)
                refreshed_ms.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                result = await client.call_tool("ask", {"question": QUESTION, "k": k})
                mcp_ms.append((time.perf_counter() - started) * 1000)
                assert not result.is_error
                # Part of the call above: the SDK's client checks the structured
                # result against the tool's output schema (jsonschema).
                started = time.perf_counter()
                await client.session.validate_tool_result("ask", result)
                validation_ms.append((time.perf_counter() - started) * 1000)
            return {"start_s": ready - spawned, "first_call_s": first_done - ready}

    startup = anyio.run(main)
    lib, over = median(library_ms), median(mcp_ms)
    return {
        "calls": calls,
        "k": k,
        "library_p50_ms": round(lib, 2),
        "library_p95_ms": round(percentile(library_ms, 95), 2),
        "library_refresh_ask_p50_ms": round(median(refreshed_ms), 2),
        "mcp_p50_ms": round(over, 2),
        "mcp_p95_ms": round(percentile(mcp_ms, 95), 2),
        "client_schema_check_p50_ms": round(median(validation_ms), 2),
        "mcp_over_library": round(over / lib, 2),
        "mcp_overhead_ms": round(over - lib, 2),
        "server_start_s": round(startup["start_s"], 2),
        "first_call_s": round(startup["first_call_s"], 2),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def transcript(corpus: Path, index: Path, out: Path) -> None:
    """One stdio session in JSON-RPC lines as they cross the pipe (``>``
    client to server, ``<`` server to client): initialize, tools/list,
    tools/call ask. Written by hand rather than through the SDK's client,
    so that the file shows exactly what an MCP client sends."""
    proc = subprocess.Popen(
        [DSQA, *server_args(corpus, index)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True, env=_env(),
    )
    assert proc.stdin is not None and proc.stdout is not None
    lines: list[str] = []

    def send(message: dict[str, Any]) -> None:
        text = json.dumps(message, ensure_ascii=False)
        lines.append("> " + text)
        proc.stdin.write(text + "\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]

    def receive() -> None:
        lines.append("< " + proc.stdout.readline().rstrip("\n"))  # type: ignore[union-attr]

    send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "transcript", "version": "1"}}})
    receive()
    send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    receive()
    send({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "ask", "arguments": {"question": QUESTION, "k": 3}}})
    receive()
    proc.stdin.close()
    proc.wait(timeout=60)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mcp_latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50, help="timed calls each way (default 50)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    parser.add_argument("--transcript", type=Path, metavar="FILE", help="write a stdio session's transcript here instead")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dsqa-bench-mcp-") as tmp:
        corpus, index = notes_copy(Path(tmp))
        if args.transcript:
            transcript(corpus, index, args.transcript)
            return 0
        result = measure(corpus, index, args.calls)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
