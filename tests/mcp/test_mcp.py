"""``dsqa mcp``: the MCP SDK's own client starts the server as a subprocess
and talks to it over stdio, as an assistant does; no part of the protocol is
mocked. The fast tests run the CLI with the fake model (registered by a small
launcher, as the other subprocess tests do); one runs the installed ``dsqa``
command with the real model."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

mcp = pytest.importorskip("mcp", reason="the MCP SDK (dsqa[mcp], in the dev extra)")

from mcp import Client, StdioServerParameters  # noqa: E402

from dsqa.mcp import TOOLS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent.parent
QUESTION = "how do overlay networks do service discovery"
DSQA_BIN = shutil.which("dsqa", path=str(Path(sys.executable).parent)) or "dsqa"

#: Runs ``dsqa ARGS`` with the fake model registered (tests/conftest.py).
LAUNCHER = (
    f"import sys; sys.path.insert(0, {str(ROOT / 'tests')!r}); from conftest import FakeEmbedder; "
    "from dsqa import register_model; register_model('fake-hash', FakeEmbedder); "
    "from dsqa.cli import main; sys.argv = ['dsqa'] + sys.argv[1:]; main()"
)


def _env() -> dict[str, str]:
    """What the server process needs from ours (the SDK passes on only a
    few variables by default): this checkout first on the path, offline
    model loading, the test's per-user data directory."""
    keep = ("PYTHONPATH", "HF_HUB_OFFLINE", "XDG_DATA_HOME", "HOME", "PATH")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["HF_HUB_OFFLINE"] = "1"
    return env


def fake_server(settings, *extra: str) -> StdioServerParameters:
    args = ["mcp", "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "--model", "fake-hash", *extra]
    return StdioServerParameters(command=sys.executable, args=["-c", LAUNCHER, *args], env=_env(), cwd=str(ROOT))


def session(params: StdioServerParameters, body) -> Any:
    """``await body(client)`` in a stdio session with the server ``params``
    starts; the server stops when the session ends."""

    async def main() -> Any:
        async with Client(params, read_timeout_seconds=120) as client:
            return await body(client)

    return anyio.run(main)


def payload(result) -> dict:
    """A successful tool result's JSON (its structured content, which the
    text content repeats)."""
    assert not result.is_error, result.content
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


def error_line(result) -> str:
    """A tool error's message: one line, no traceback."""
    assert result.is_error, result
    (block,) = result.content
    text = block.text
    assert "\n" not in text and "Traceback" not in text, text
    return text


def check_cited_lines(corpus: Path, passage: dict) -> None:
    """The passage's text is where its citation says, in the note file."""
    lines = (corpus / passage["source"]).read_text(encoding="utf-8").split("\n")
    region = "\n".join(lines[passage["start_line"] - 1 : passage["end_line"]])
    assert passage["text"] in region, passage["citation"]
    assert passage["text"].split("\n")[0] in lines[passage["start_line"] - 1]
    assert passage["citation"].startswith(f"{passage['source']}:{passage['start_line']}-{passage['end_line']}")


def test_every_tool_over_stdio(cli_built, tmp_path):
    corpus = cli_built.corpus_dir
    secret = tmp_path / "outside" / "secret.md"
    secret.parent.mkdir()
    secret.write_text("# Secret\nhunter2\n")
    os.symlink(secret, corpus / "notes" / "leak.md")  # a link out of the folder, there before the server starts

    async def body(client: Client) -> None:
        assert client.server_info.name == "dsqa" and "read_note" in (client.instructions or "")
        assert f"({corpus})" in client.instructions  # the folder it searches, whole
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tuple(tools) == TOOLS
        for tool in tools.values():
            assert len(tool.description) > 200 and "Returns" in tool.description, tool.name
        assert set(tools["ask"].input_schema["properties"]) == {"question", "k", "notes"}
        assert tools["ask"].input_schema["required"] == ["question"]
        assert set(tools["read_note"].input_schema["properties"]) == {"note", "start_line", "end_line", "page"}

        answer = payload(await client.call_tool("ask", {"question": QUESTION, "k": 5}))
        assert answer["question"] == QUESTION and len(answer["passages"]) == 5
        assert answer["verdict"] in ("answered", "low confidence", "not covered") and answer["reason"]
        for p in answer["passages"]:
            check_cited_lines(corpus, p)

        first = answer["passages"][0]
        read = payload(await client.call_tool(
            "read_note", {"note": first["source"], "start_line": first["start_line"], "end_line": first["end_line"]}
        ))
        lines = (corpus / first["source"]).read_text(encoding="utf-8").split("\n")
        assert read["lines"] == lines[first["start_line"] - 1 : first["end_line"]]
        assert read["total_lines"] >= read["end_line"] and read["citation"].startswith(first["source"])

        found = payload(await client.call_tool("search", {"query": "docker swarm", "k": 2, "notes": ["anonymous-short-notes"]}))
        assert found["query"] == "docker swarm" and len(found["passages"]) == 2
        assert {p["source"] for p in found["passages"]} == {"notes/anonymous-short-notes.md"}

        status = payload(await client.call_tool("status", {}))
        assert status["notes"] == 5 and status["up_to_date"] is True and status["model"]["name"] == "fake-hash"

        refusals = {
            "../outside/secret.md": "leads out of the notes folder",
            str(secret): "absolute path",
            "notes/leak.md": "no note 'notes/leak.md' in the index",
        }
        for note, why in refusals.items():
            message = error_line(await client.call_tool("read_note", {"note": note}))
            assert why in message and "hunter2" not in message, message

        assert "k must be between 1 and 100, got 0" in error_line(await client.call_tool("ask", {"question": QUESTION, "k": 0}))
        huge = error_line(await client.call_tool("ask", {"question": "why " * 2_500_000}))
        assert "the limit is 2,000" in huge and len(huge) < 200
        assert "no note 'nothere'" in error_line(await client.call_tool("search", {"query": "pods", "notes": ["nothere"]}))
        assert "empty" in error_line(await client.call_tool("ask", {"question": " \n "}))

        again = payload(await client.call_tool("ask", {"question": "what is a pod", "k": 1}))  # still serving
        assert len(again["passages"]) == 1

    session(fake_server(cli_built), body)


def test_a_stale_index_is_updated_before_answering(cli_built):
    """A note saved before the server starts, and one saved between two
    calls (each call looks at the notes first), are in the next answer."""
    notes = cli_built.corpus_dir / "notes"
    (notes / "zebra.md").write_text("# Zebras\nA quagga is an extinct zebra of South Africa.\n")

    async def body(client: Client) -> tuple[dict, dict]:
        first = payload(await client.call_tool("ask", {"question": "what is a quagga", "k": 1}))
        (notes / "okapi.md").write_text("# Okapis\nAn okapi is a forest giraffe of the Congo.\n")
        second = payload(await client.call_tool("search", {"query": "okapi forest giraffe", "k": 1}))
        return first, second

    first, second = session(fake_server(cli_built), body)
    assert first["passages"][0]["source"] == "notes/zebra.md"
    assert second["passages"][0]["source"] == "notes/okapi.md"


def test_an_empty_folder_is_a_tool_error(tmp_path, fake_model):
    from dsqa import Settings

    (tmp_path / "empty").mkdir()
    settings = Settings(corpus_dir=tmp_path / "empty", index_dir=tmp_path / "index", model="fake-hash")

    async def body(client: Client) -> tuple[str, str]:
        asked = error_line(await client.call_tool("ask", {"question": QUESTION}))
        status = error_line(await client.call_tool("status", {}))
        return asked, status

    asked, status = session(fake_server(settings), body)
    assert asked.startswith("Error executing tool ask: no notes to index in ") and str(tmp_path / "empty") in asked
    assert "no index in" in status


def test_without_the_sdk_mcp_names_the_extra(cli_settings, monkeypatch):
    from _helpers import invoke

    for name in [m for m in sys.modules if m == "mcp" or m.startswith(("mcp.", "dsqa.mcp"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "mcp", None)  # import mcp fails as if it were not installed
    r = invoke(cli_settings, "mcp")
    assert r.exit_code == 1
    assert r.output.strip() == "Error: dsqa mcp needs the MCP SDK: pip install 'dsqa[mcp]'"


@pytest.mark.real_model
def test_the_installed_command_answers_the_design_card_question(tmp_path):
    """The real model, the committed index (a copy beside a copy of the
    notes, so nothing is rebuilt), the ``dsqa`` command an assistant runs."""
    shutil.copytree(ROOT / "corpus", tmp_path / "corpus")
    shutil.copytree(ROOT / "index", tmp_path / "index")
    params = StdioServerParameters(
        command=DSQA_BIN,
        args=["mcp", "--corpus", str(tmp_path / "corpus"), "--index", str(tmp_path / "index"), "--no-auto-reindex"],
        env=_env(),
    )

    async def body(client: Client) -> dict:
        return payload(await client.call_tool("ask", {"question": QUESTION}))

    answer = session(params, body)
    assert answer["verdict"] == "answered" and answer["text"]
    assert any("overlay" in p["text"].lower() for p in answer["passages"])
    for p in answer["passages"]:
        check_cited_lines(tmp_path / "corpus", p)


@pytest.mark.parametrize(("args", "named"), [(("--port", "9000"), "--port"), (("--host", "0.0.0.0"), "--host"),
                                             (("--allow-origin", "http://localhost:3000"), "--allow-origin")])
def test_address_flags_without_http_are_a_usage_error(cli_settings, args, named):
    from _helpers import invoke

    r = invoke(cli_settings, "mcp", *args)
    assert r.exit_code == 2 and f"Error: {named}: only with --http" in r.output
