"""The page server: its endpoints through gradio_client over the bundled
index, and what it answers at all (raw HTTP, as another site's page would send
it): hosts, origins, uploads, body limits, one-line errors."""

# ruff: noqa: F811 (the fixtures imported from web_shared are test parameters here)
from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import logging
import time
import uuid
from pathlib import Path

import pytest
from web_shared import (  # noqa: F401 (fixtures are test parameters)
    ASK_BODY,
    ASK_JSON,
    CITATION,
    GRADIO_WARNINGS,
    QUESTION,
    _request,
    _start,
    client,
    fake_engine,
    fake_server,
    gr,
    gradio_client,
    real_engine,
    server,
)

from dsqa import DSQA, InvalidInputError, Settings
from dsqa.web.page import build_page
from dsqa.web.request_guard import (
    MAX_BODY_BYTES,
    RequestGuard,
    is_loopback,
    loopback_hosts,
)
from dsqa.web.server import launch

pytestmark = GRADIO_WARNINGS


# -- a server over the real bundled index ------------------------------------
@pytest.mark.real_model
def test_ask_gives_answer_and_cited_passages(client, real_engine):
    answer_html, passages_html = client.predict(QUESTION, 3, [], api_name="/ask")
    assert "dsqa-answer" in answer_html and "Error" not in answer_html
    expected = real_engine.ask(QUESTION, k=3)
    assert passages_html.count('class="dsqa-passage"') == 3
    for p in expected.passages:
        assert f"{p.source}:{p.start_line}-{p.end_line}" in passages_html
        assert "Open the note section" in passages_html
    if expected.text:
        assert "dsqa-cite" in answer_html or expected.text[:20] in answer_html

    data = client.predict(QUESTION, 3, None, api_name="/ask_json")
    assert data["question"] == QUESTION and data["found"] is True
    assert [p["citation"] for p in data["passages"]] == [p.citation for p in expected.passages]
    assert all(CITATION.match(p["citation"]) for p in data["passages"])


@pytest.mark.real_model
def test_note_filter_and_status(client):
    data = client.predict("what is S3", 2, ["notes/anonymous-short-notes.md"], api_name="/ask_json")
    assert {p["source"] for p in data["passages"]} == {"notes/anonymous-short-notes.md"}
    status = client.predict(api_name="/status_json")
    assert status["notes"] == 5 and status["chunks"] > 0 and status["model"]["name"] == "all-MiniLM-L6-v2"
    assert "notes" in client.predict(api_name="/status")


@pytest.mark.real_model
def test_bad_questions_show_the_library_message(client):
    answer_html, passages_html = client.predict("", 5, [], api_name="/ask")
    assert 'class="dsqa-error"' in answer_html and "the question is empty" in answer_html
    assert passages_html == "" and "Traceback" not in answer_html

    answer_html, _ = client.predict("x" * 2001, 5, [], api_name="/ask")
    assert "the limit is 2,000" in answer_html

    with pytest.raises(gradio_client.exceptions.AppError, match="the question is empty"):
        client.predict("   ", api_name="/ask_json")
    with pytest.raises(gradio_client.exceptions.AppError, match="k must be between 1 and 100"):
        client.predict(QUESTION, 0, api_name="/ask_json")


@pytest.mark.real_model
def test_etc_passwd_cannot_be_read(client):
    evil = "../../etc/passwd"
    answer_html, passages_html = client.predict("what is S3", 5, [evil], api_name="/ask")
    assert "dsqa-error" in answer_html and "no note" in answer_html and passages_html == ""
    for notes in ([evil], ["/etc/passwd"], ["notes/../../../etc/passwd"]):
        with pytest.raises(gradio_client.exceptions.AppError, match="no note"):
            client.predict("what is S3", 5, notes, api_name="/ask_json")
    # As a question it is just text: answered from the notes, never read.
    answer_html, passages_html = client.predict(evil, 5, [], api_name="/ask")
    assert "root:x:0:0" not in answer_html + passages_html
    assert passages_html.count('class="dsqa-passage"') == 5


# -- what the server answers at all: raw HTTP, as another site's page would send it

def test_foreign_host_and_origin_are_refused(fake_server):
    port = fake_server.port
    post = {"Content-Type": "application/json"}
    # DNS rebinding: another site's name now resolves to 127.0.0.1, so its
    # page's requests carry its own name as Host (and are same-origin to it).
    for host, origin in [
        (f"evil.example:{port}", f"http://evil.example:{port}"),
        (f"evil.example:{port}", None),
        (f"127.0.0.1.evil.example:{port}", f"http://127.0.0.1.evil.example:{port}"),
        ("localhost", None),  # the wrong port is another server's name
        (f"localhost:{port + 1}", None),
    ]:
        headers = {"Host": host, **post, **({"Origin": origin} if origin else {})}
        status, got, body = _request(fake_server, "POST", ASK_JSON, headers, ASK_BODY)
        assert status == 400, (host, status, body)
        assert "access-control-allow-origin" not in got and b"event_id" not in body
        status, got, body = _request(fake_server, "GET", "/gradio_api/info", {"Host": host})
        assert status == 400 and b"docker" not in body

    # Another site's page calling 127.0.0.1 directly: the right Host, its own Origin.
    for origin in ("http://evil.example", f"http://evil.example:{port}", "null", f"http://localhost:{port + 1}"):
        headers = {"Host": f"127.0.0.1:{port}", "Origin": origin}
        status, got, body = _request(fake_server, "POST", ASK_JSON, {**headers, **post}, ASK_BODY)
        assert status == 403 and "access-control-allow-origin" not in got and b"event_id" not in body, origin
        preflight = {**headers, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
        status, got, _ = _request(fake_server, "OPTIONS", ASK_JSON, preflight)
        assert status == 403 and "access-control-allow-origin" not in got, origin

    # This machine's names for the server work, with their own origin or none.
    for name in ("localhost", "127.0.0.1", "[::1]", "LOCALHOST"):
        host = f"{name}:{port}"
        for headers in ({"Host": host}, {"Host": host, "Origin": f"http://{host}"}):
            status, got, body = _request(fake_server, "POST", ASK_JSON, {**headers, **post}, ASK_BODY)
            assert status == 200 and b"event_id" in body, (headers, status, body)
            assert "access-control-allow-origin" not in got
        status, _, body = _request(fake_server, "GET", "/", {"Host": host})
        assert status == 200 and b"<html" in body.lower()


def test_listed_origins_may_call_from_the_browser(fake_engine):
    """The origins are the engine's ``Settings.allow_origins`` (what ``dsqa
    serve --allow-origin`` and $DSQA_ALLOW_ORIGINS set)."""
    listed = DSQA(fake_engine.settings.with_(allow_origins=["http://localhost:3000/", "https://Notes.Example"]))
    running = _start(build_page(listed))
    try:
        host = {"Host": f"127.0.0.1:{running.port}"}
        post = {**host, "Content-Type": "application/json"}
        for origin in ("http://localhost:3000", "https://notes.example"):
            status, got, body = _request(running, "POST", ASK_JSON, {**post, "Origin": origin}, ASK_BODY)
            assert status == 200 and b"event_id" in body
            assert got["access-control-allow-origin"] == origin and "access-control-allow-credentials" not in got
            preflight = {**host, "Origin": origin, "Access-Control-Request-Method": "POST"}
            status, got, _ = _request(running, "OPTIONS", ASK_JSON, preflight)
            assert status == 200 and got["access-control-allow-origin"] == origin
        status, got, _ = _request(running, "POST", ASK_JSON, {**post, "Origin": "http://localhost:3001"}, ASK_BODY)
        assert status == 403 and "access-control-allow-origin" not in got
    finally:
        running.close()
    # Given to launch, they replace the settings' (here: allow none).
    running = _start(build_page(listed), allowed_origins=[])
    try:
        post = {"Host": f"127.0.0.1:{running.port}", "Content-Type": "application/json", "Origin": "http://localhost:3000"}
        assert _request(running, "POST", ASK_JSON, post, ASK_BODY)[0] == 403
    finally:
        running.close()
    page = build_page(fake_engine)  # never served: each launch below refuses its origin first
    for bad in ("localhost:3000", "http://localhost:3000/page", "*", "ftp://x"):
        with pytest.raises(InvalidInputError, match="scheme://host"):
            Settings(allow_origins=[bad])
        with pytest.raises(InvalidInputError, match="scheme://host"):
            launch(page, port=0, block=False, allowed_origins=[bad])


def test_uploads_are_refused_and_store_nothing(fake_server):
    upload_dir = Path(gr.utils.get_upload_folder())
    name = f"dsqa-upload-probe-{uuid.uuid4().hex}.txt"
    boundary = "dsqaboundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode() + b"x" * 1_000_000 + f"\r\n--{boundary}--\r\n".encode()
    host = f"127.0.0.1:{fake_server.port}"
    for extra in ({}, {"Origin": f"http://{host}"}, {"Origin": "http://evil.example"}):
        headers = {"Host": host, "Content-Type": f"multipart/form-data; boundary={boundary}", **extra}
        for path in ("/gradio_api/upload", "/gradio_api/upload/", "/gradio_api/process_recording"):
            status, _, answer = _request(fake_server, "POST", path, headers, body)
            assert status == 403, (path, extra, status, answer)
    time.sleep(0.2)  # Gradio moves uploads into place in a background task
    assert not list(upload_dir.rglob(name)) if upload_dir.exists() else True



def test_request_bodies_over_the_limit_get_413(fake_server):
    """Issue 30: a 200 MB body used to be read into memory in full. Over the
    guard's limit it is refused, whether its Content-Length says so or it
    comes in chunks, and the server goes on answering."""
    host = f"127.0.0.1:{fake_server.port}"
    headers = {"Host": host, "Content-Type": "application/json"}
    big = json.dumps({"data": ["overlay " * 300_000, 3, None]}).encode()
    assert len(big) > MAX_BODY_BYTES
    status, _, body = _request(fake_server, "POST", ASK_JSON, headers, big)
    assert status == 413 and b"request body too large" in body, (status, body)

    conn = http.client.HTTPConnection("127.0.0.1", fake_server.port, timeout=20)
    try:
        pieces = (big[i : i + 65536] for i in range(0, len(big), 65536))
        with contextlib.suppress(ConnectionError):  # the server may stop reading once it has answered
            conn.request("POST", ASK_JSON, body=pieces, headers=headers, encode_chunked=True)
        response = conn.getresponse()
        assert response.status == 413 and b"request body too large" in response.read()
    finally:
        conn.close()
    status, _, body = _request(fake_server, "POST", ASK_JSON, headers, ASK_BODY)
    assert status == 200 and b"event_id" in body


def test_the_body_limit_counts_what_arrives():
    """Without a Content-Length the guard counts the body as the app reads
    it: past the limit the app sees a disconnect and what it sends is
    dropped; under it, the app gets the whole body."""
    import asyncio

    seen: list[object] = []

    async def app(scope, receive, send):
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                seen.append("disconnect")
                break
            body += message.get("body", b"")
            if not message.get("more_body"):
                seen.append(len(body))
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def run(size: int, declared: bool) -> list[dict]:
        chunks = [{"type": "http.request", "body": b"x" * 1000, "more_body": True} for _ in range(size // 1000)]
        chunks.append({"type": "http.request", "body": b"", "more_body": False})
        headers = [(b"host", b"localhost:1")] + ([(b"content-length", str(size).encode())] if declared else [])
        sent: list[dict] = []

        async def receive():
            return chunks.pop(0)

        async def send(message):
            sent.append(message)

        guard = RequestGuard(app, allowed_hosts=None, max_body_bytes=10_000)
        asyncio.run(guard({"type": "http", "path": "/", "headers": headers}, receive, send))
        return sent

    assert run(5_000, declared=False)[0]["status"] == 200 and seen == [5_000]
    sent = run(50_000, declared=False)
    assert [m.get("status") for m in sent] == [413, None] and seen[-1] == "disconnect"
    assert b"too large" in sent[1]["body"]
    count = len(seen)
    assert run(50_000, declared=True)[0]["status"] == 413 and len(seen) == count  # refused before the app ran

def test_what_a_non_loopback_bind_checks():
    """Any Host is served there (documented in the README); the Origin check
    and the upload refusal still apply."""
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.5", "example.org"))
    assert loopback_hosts("127.0.0.2", 80) >= {"localhost", "localhost:80", "127.0.0.2:80", "[::1]"}
    guard = RequestGuard(app=None, allowed_hosts=None, refused_paths=["/gradio_api/upload"])

    def scope(host, origin=None, path="/"):
        headers = [(b"host", host.encode())] + ([(b"origin", origin.encode())] if origin else [])
        return {"type": "http", "path": path, "headers": headers}

    assert guard.refusal(scope("192.168.1.5:7860")) is None
    assert guard.refusal(scope("notes.lan:7860", "http://notes.lan:7860")) is None
    assert guard.refusal(scope("notes.lan:7860", "http://evil.example"))[0] == 403
    assert guard.refusal(scope("notes.lan:7860", path="/gradio_api/upload/"))[0] == 403
    two_hosts = {"type": "http", "path": "/", "headers": [(b"host", b"a:1"), (b"host", b"b:1")]}
    assert guard.refusal(two_hosts)[0] == 400


def test_notes_that_are_not_names_are_a_clear_error(fake_server, caplog):
    client = gradio_client.Client(fake_server.url, verbose=False)
    message = "notes must be a note name or a list of note names"
    with pytest.raises(gradio_client.exceptions.AppError, match=message):
        client.predict("docker swarm", 3, 123, api_name="/ask_json")
    with caplog.at_level(logging.ERROR, logger="dsqa"):
        answer_html, passages_html = client.predict("docker swarm", 3, 123, api_name="/ask")
    assert message in answer_html and "something went wrong" not in answer_html and passages_html == ""
    assert not caplog.records, "a server traceback was logged"
