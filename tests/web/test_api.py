"""The page server's JSON API (dsqa/web/api.py), driven with httpx against
the real server on a free localhost port: each endpoint, its OpenAPI
documentation, and the request guard in front of it."""

from __future__ import annotations

import httpx
import pytest
from web_shared import GRADIO_WARNINGS, QUESTION

from dsqa import DSQA
from dsqa.web.api import PATHS
from dsqa.web.page import build_page
from dsqa.web.server import launch

pytestmark = GRADIO_WARNINGS


@pytest.fixture
def api(built):
    """An httpx client of a page server over a copy of the bundled notes."""
    running = launch(build_page(built), port=0, block=False)
    try:
        with httpx.Client(base_url=running.url, timeout=60) as client:
            client.port = running.port  # type: ignore[attr-defined]
            yield client
    finally:
        running.close()


def test_each_endpoint_answers_with_the_library_s_json(api, built):
    r = api.post("/api/ask", json={"question": QUESTION, "k": 3})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer == built.ask(QUESTION, k=3).to_dict()
    assert answer["verdict"] and answer["reason"] and len(answer["passages"]) == 3
    corpus = built.settings.corpus_dir
    for p in answer["passages"]:
        lines = (corpus / p["source"]).read_text(encoding="utf-8").split("\n")
        assert p["text"] in "\n".join(lines[p["start_line"] - 1 : p["end_line"]])

    r = api.post("/api/search", json={"query": "docker swarm", "k": 2, "notes": ["anonymous-short-notes"]})
    assert r.status_code == 200, r.text
    found = r.json()
    assert found["query"] == "docker swarm"
    assert [p["citation"] for p in found["passages"]] == [
        p.citation for p in built.search("docker swarm", k=2, notes=["anonymous-short-notes"])
    ]

    r = api.get("/api/status")
    assert r.status_code == 200 and r.json()["notes"] == 5 and r.json()["up_to_date"] is True


def test_the_openapi_page_documents_the_api(api):
    spec = api.get("/openapi.json").json()
    assert set(PATHS) <= set(spec["paths"])
    assert set(spec["paths"]["/api/ask"]) == {"post"} and set(spec["paths"]["/api/status"]) == {"get"}
    schemas = spec["components"]["schemas"]
    assert {"question", "k", "notes"} == set(schemas["AskRequest"]["properties"])
    assert {"verdict", "reason", "confidence", "passages"} <= set(schemas["AnswerJSON"]["properties"])
    assert "citation" in schemas["PassageJSON"]["properties"]
    ask = spec["paths"]["/api/ask"]["post"]
    assert {"200", "400", "409", "413"} <= set(ask["responses"])
    docs = api.get("/api/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"question": "   "}, 400, "the question is empty"),
        ({"question": QUESTION, "k": 0}, 400, "k must be between 1 and 100, got 0"),
        ({"question": "x" * 2001}, 400, "the limit is 2,000"),
        ({"question": QUESTION, "notes": ["../../etc/passwd"]}, 400, "no note '../../etc/passwd'"),
    ],
)
def test_mistakes_are_400_with_the_library_s_one_line_message(api, body, status, detail):
    r = api.post("/api/ask", json=body)
    assert r.status_code == status and detail in r.json()["detail"], r.text
    assert "\n" not in r.json()["detail"] and "Traceback" not in r.text


def test_malformed_requests_are_refused_by_their_schema(api):
    assert api.post("/api/ask", json={"question": QUESTION, "colour": "red"}).status_code == 422
    assert api.post("/api/ask", json={"k": 3}).status_code == 422
    assert api.post("/api/ask", content=b"not json", headers={"Content-Type": "application/json"}).status_code == 422


def test_a_folder_that_cannot_answer_is_409(tmp_path, fake_model):
    (tmp_path / "empty").mkdir()
    engine = DSQA(corpus_dir=tmp_path / "empty", index_dir=tmp_path / "index", model="fake-hash")
    running = launch(build_page(engine), port=0, block=False)
    try:
        r = httpx.post(running.url + "api/ask", json={"question": QUESTION}, timeout=60)
        assert r.status_code == 409 and r.json()["detail"].startswith("no notes to index in ")
    finally:
        running.close()


def test_foreign_host_and_origin_are_refused(api):
    port = api.port
    r = api.post("/api/ask", json={"question": QUESTION}, headers={"Host": f"evil.example:{port}"})
    assert r.status_code == 400 and "Host header refused" in r.text
    r = api.get("/api/status", headers={"Host": f"evil.example:{port}"})
    assert r.status_code == 400
    r = api.post("/api/ask", json={"question": QUESTION}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-origin request refused" in r.text
    assert api.get("/openapi.json", headers={"Origin": "http://evil.example"}).status_code == 403
    own = api.post("/api/search", json={"query": "pods"}, headers={"Origin": f"http://127.0.0.1:{port}"})
    assert own.status_code == 200


def test_an_oversized_body_is_refused(api):
    """The request guard's body limit holds for the API: 413 before the
    question is read, whether the body says its length or not."""
    big = {"question": "why " * 600_000}  # about 2.4 MB of JSON
    r = api.post("/api/ask", json=big)
    assert r.status_code == 413 and "request body too large" in r.text

    def chunks():
        for _ in range(40):
            yield b"x" * 65536

    r = api.post("/api/search", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert api.post("/api/ask", json={"question": QUESTION, "k": 1}).status_code == 200  # and it still serves


def test_a_note_saved_a_moment_ago_is_searched(api, built):
    assert api.post("/api/search", json={"query": "pods"}).status_code == 200  # the index is loaded and checked
    (built.settings.corpus_dir / "notes" / "okapi.md").write_text("# Okapis\nAn okapi is a forest giraffe of the Congo.\n")
    r = api.post("/api/search", json={"query": "okapi forest giraffe", "k": 1})
    assert r.status_code == 200 and r.json()["passages"][0]["source"] == "notes/okapi.md"
