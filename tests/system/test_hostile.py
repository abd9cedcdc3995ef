"""Hostile notes and requests (issue 30): a note built to break a reader,
a request far over any limit, a Ray address that is no Ray, a corpus that is
a whole machine, a stdout that cannot be written. Each must cost one
warning or one line of error, within a bound, and never take the rest down."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import pytest
from _helpers import invoke
from conftest import CORPUS, INDEX, ROOT

from dsqa import DSQA, InvalidInputError, Settings
from dsqa import engine as engine_module
from dsqa.sources import loading
from dsqa.sources.formats import html as html_reader
from dsqa.sources.formats import worker
from dsqa.sources.formats.limits import ReaderLimits
from dsqa.sources.loading import CorpusReading, load_corpus

fpdf = pytest.importorskip("fpdf", reason="fpdf2 (the dev extra) writes the test PDFs")

OK_NOTE = "# Overlay\nOverlay networks do service discovery through the swarm's DNS.\n"


def raw_pdf(content: bytes, pages: int) -> bytes:
    """A PDF of ``pages`` pages that all show one Flate-compressed content
    stream ``content`` (written by hand: no PDF library makes a stream shared
    by every page on purpose)."""
    stream = zlib.compress(content, 9)
    kids = " ".join(f"{5 + i} 0 R" for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>"
    objects += [page] * pages
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1) + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)


TEXT_LINE = b"BT /F1 12 Tf 72 700 Td (overlay networks do service discovery through the swarm) Tj ET\n"


def text_pdf(pages: list[str]) -> bytes:
    pdf = fpdf.FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 10, text)
    return bytes(pdf.output())


def encrypted(data: bytes, algorithm: str) -> bytes:
    """``data`` encrypted with ``algorithm``, openable with no password (an
    owner password only restricts what a viewer allows)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt("", "owner", algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def corpus_with(tmp_path: Path, files: dict[str, bytes | str]) -> Path:
    corpus = tmp_path / "notes"
    corpus.mkdir()
    (corpus / "ok.md").write_text(OK_NOTE)
    for name, content in files.items():
        path = corpus / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return corpus


def load(corpus: Path, **limits) -> tuple[dict[str, str], dict[str, str]]:
    """(text of each note loaded, reason of each file skipped)."""
    loaded = load_corpus(corpus, CorpusReading(limits=ReaderLimits(**limits)))
    return {n.source: n.text for n in loaded.notes}, dict(loaded.skipped)


# -- 1. one hostile note never takes the folder down ------------------------------
UNCLOSED_HTML = "<html><body>" + "<div>unclosed " * 400 + "</body></html>"
DEEP_NOTEBOOK = '{"nbformat": 4, "cells": ' + "[" * 1000 + "]" * 1000 + "}"
HUGE_LEVEL = json.dumps(
    {"nbformat": 3, "worksheets": [{"cells": [{"cell_type": "heading", "level": 10**9, "source": "Swarm"}]}]}
)


def test_small_hostile_notes_are_read_or_skipped_and_the_rest_answers(tmp_path, fake_model, caplog):
    """Each of these broke every command with a traceback naming no file: a
    2 KB page of 400 unclosed tags, a 2 KB notebook nested 1,000 deep, a
    heading level of 10**9 (a gigabyte of ``#``), an AES-256 PDF."""
    corpus = corpus_with(
        tmp_path,
        {
            "unclosed.html": UNCLOSED_HTML,
            "deep.ipynb": DEEP_NOTEBOOK,
            "level.ipynb": HUGE_LEVEL,
            "aes256.pdf": encrypted(text_pdf(["Encrypted notes on gossip protocols."]), "AES-256"),
        },
    )
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model="fake-hash")
    with caplog.at_level(logging.WARNING, logger="dsqa"):
        report = DSQA(settings).reindex()
    assert sorted(report.added) == ["aes256.pdf", "level.ipynb", "ok.md", "unclosed.html"]
    assert dict(report.skipped) == {
        "deep.ipynb": "over the nesting bound: the notebook's JSON nested more than 500 deep (Settings.reader_max_depth)"
    }
    assert "skipped deep.ipynb: over the nesting bound" in caplog.text
    texts, _ = load(corpus)
    assert texts["level.ipynb"] == "###### Swarm\n"  # levels past 6 are 6
    assert texts["unclosed.html"].count("unclosed") == 400
    assert "gossip protocols" in texts["aes256.pdf"]
    assert DSQA(settings).ask("overlay service discovery").passages[0].source == "ok.md"


def test_a_reader_failing_on_its_own_skips_the_note_and_logs_where(tmp_path, monkeypatch, caplog):
    """Whatever a reader raises skips that note only, with a warning naming
    it; the traceback is logged at debug level (what ``-v`` shows). In the
    test suite ($DSQA_STRICT_READERS) the same failure is raised, so a bug
    of dsqa's own does not pass for a bad file."""

    def broken(self, data, limits=None):
        raise KeyError("a bug of ours")

    corpus = corpus_with(tmp_path, {"page.html": "<p>fine</p>"})
    monkeypatch.setattr(worker, "_ISOLATE", False)  # the reader runs here, where it can be broken
    monkeypatch.setattr(html_reader.HtmlReader, "read", broken)
    with pytest.raises(worker.ReaderError, match="the html reader failed on page.html: KeyError"):
        load(corpus)
    monkeypatch.delenv(worker.STRICT_ENV)
    with caplog.at_level(logging.DEBUG, logger="dsqa"):
        texts, skipped = load(corpus)
    assert list(texts) == ["ok.md"]
    assert skipped == {"page.html": "the html reader failed (KeyError: 'a bug of ours'); dsqa -v shows where"}
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG and "page.html" in r.getMessage()]
    assert debug and "Traceback" in debug[0].getMessage() and "broken" in debug[0].getMessage()


# -- 2. bounded readers ---------------------------------------------------------
def test_notes_over_the_depth_or_text_bound_are_skipped_naming_it(tmp_path):
    """Depth: a page nested 100,000 deep took minutes to parse. Characters:
    a PDF whose hundred pages all show one stream."""
    corpus = corpus_with(
        tmp_path,
        {
            "deep.html": "<html><body>" + "<b>" * 100_000 + "deep" + "</b>" * 100_000 + "</body></html>",
            "shared.pdf": raw_pdf(TEXT_LINE * 40, 100),
        },
    )
    texts, skipped = load(corpus, max_chars=50_000)
    assert list(texts) == ["ok.md"]
    assert skipped == {
        "deep.html": "over the nesting bound: the page's elements nested more than 500 deep (Settings.reader_max_depth)",
        "shared.pdf": "over the text bound: more than 50,000 characters extracted (Settings.reader_max_chars)",
    }
    texts, skipped = load(corpus)  # under the default bounds the PDF reads
    assert texts["shared.pdf"].count("overlay networks") == 4000 and "deep.html" in skipped


@pytest.mark.slow
def test_a_note_over_the_memory_bound_is_skipped_naming_it(tmp_path):
    """A page of tiny elements: a 16 MB one needed over 4 GB."""
    corpus = corpus_with(tmp_path, {"tiny-tags.html": "<html><body>" + "<i>a</i>" * 150_000 + "</body></html>"})
    texts, skipped = load(corpus, memory_mb=64)
    assert list(texts) == ["ok.md"]
    assert skipped == {"tiny-tags.html": "over the memory bound: reading it needs more than 64 MiB (Settings.reader_memory_mb)"}


@pytest.mark.slow
def test_a_note_over_the_time_bound_is_skipped_and_the_next_one_read(tmp_path):
    """A 60 KB PDF whose one page's stream inflates to 17 MB of drawing
    commands: pypdf spends minutes in that one call, which only stopping
    the process can bound."""
    corpus = corpus_with(
        tmp_path, {"inflate.pdf": raw_pdf(TEXT_LINE * 200_000, 1), "later.pdf": text_pdf(["Read after the slow one."])}
    )
    texts, skipped = load(corpus, seconds=2.0)
    assert skipped == {"inflate.pdf": "over the time bound: not read within 2 s (Settings.reader_timeout)"}
    assert "Read after the slow one." in texts["later.pdf"]


def test_a_note_that_took_the_time_bound_is_not_read_again_while_unchanged(tmp_path, fake_model, monkeypatch):
    corpus = corpus_with(tmp_path, {"slow.pdf": text_pdf(["Pretend this page takes minutes."])})
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model="fake-hash", reader_timeout=3.0)
    calls = []
    real = worker.extract

    def timed_out(name, data, limits):
        calls.append(name)
        if name == "slow.pdf":
            raise worker.over_time(limits)
        return real(name, data, limits)

    monkeypatch.setattr(loading, "extract", timed_out)
    first = DSQA(settings).reindex()
    assert dict(first.skipped) == {"slow.pdf": "over the time bound: not read within 3 s (Settings.reader_timeout)"}
    (corpus / "new.md").write_text("# New\nA new note.\n")
    second = DSQA(settings).reindex()
    assert list(second.added) == ["new.md"] and dict(second.skipped) == dict(first.skipped)
    assert calls.count("slow.pdf") == 1
    DSQA(settings.with_(reader_timeout=4.0)).reindex()  # another bound: tried again
    assert calls.count("slow.pdf") == 2


# -- 4. oversized questions ---------------------------------------------------
def test_an_oversized_question_is_refused_before_any_per_character_pass(monkeypatch):
    """A 20 MB question blocked every other question for minutes: the length
    was checked after a character-by-character pass over it."""
    looked_at = []
    real = engine_module.unicodedata.category

    class Counting:
        @staticmethod
        def category(ch):
            looked_at.append(ch)
            return real(ch)

    monkeypatch.setattr(engine_module, "unicodedata", Counting)
    with pytest.raises(InvalidInputError, match="the limit is 2,000"):
        engine_module.clean_question("overlay " * 25_000, 2000)
    assert looked_at == []
    # Blanks collapse: a question a little over the limit before cleaning is fine.
    assert engine_module.clean_question("overlay   networks " * 150, 3000).startswith("overlay networks")
    assert looked_at


# -- 8. a stdout that cannot be written ----------------------------------------
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_failed_write_to_stdout_is_one_line():
    """``dsqa ask … > /dev/full`` printed a 27-line traceback. ``status`` on
    the bundled notes prints without loading a model; every command prints
    through the same function."""
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "dsqa.cli", "status", "--corpus", str(CORPUS), "--index", str(INDEX)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"},
            timeout=120,
        )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == ["Error: cannot write the output to stdout: No space left on device"]


# -- 5. a Ray address where something else listens ------------------------------
def test_reindex_on_a_port_that_is_not_ray_fails_in_time_and_frees_the_lock(settings):
    """``reindex --ray 127.0.0.1:PORT`` on an open port of another server
    hung until killed, holding the index lock: ``ray.init`` retries there
    for ever. Here the server accepts and never says a word (the worst case:
    an HTTP server at least answers)."""
    from dsqa import DSQA, ClusterError

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []

    def accept_and_say_nothing():
        with contextlib.suppress(OSError):  # the server closed at the end
            while True:
                accepted.append(server.accept()[0])

    threading.Thread(target=accept_and_say_nothing, daemon=True).start()
    address = f"127.0.0.1:{server.getsockname()[1]}"
    engine = DSQA(settings.with_(ray_address=address, ray_connect_timeout=1.0))
    box: dict = {}

    def run():
        try:
            engine.reindex()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)
    try:
        assert not thread.is_alive(), "reindex --ray still waiting on a port that is not Ray"
        assert isinstance(box.get("error"), ClusterError), box
        assert str(box["error"]).startswith(f"cannot reach the Ray cluster at {address}: ")
        assert "ray_connect_timeout" in str(box["error"])
        # the lock is free: the same index builds at once without Ray
        assert DSQA(settings).reindex().added
    finally:
        server.close()


# -- 3. the page's note section ---------------------------------------------------
def test_the_note_section_extracts_a_note_once_for_all_its_passages(tmp_path, fake_model, monkeypatch):
    """With a 500-page PDF, one question at k=20 took 125 s on the page: the
    whole PDF was extracted again for each passage's note section."""
    pytest.importorskip("gradio")
    from dsqa.sources.formats import pdf as pdf_reader
    from dsqa.web.sections import note_section

    pages = [f"Page {n} on overlay networks and service discovery, part {n}." for n in range(1, 21)]
    corpus = corpus_with(tmp_path, {"slides.pdf": text_pdf(pages)})
    engine = DSQA(Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model="fake-hash"))
    engine.reindex()
    calls = []
    real = pdf_reader.PdfReader.read

    def counted(self, data, limits=None):
        calls.append(len(data))
        return real(self, data) if limits is None else real(self, data, limits)

    monkeypatch.setattr(worker, "_ISOLATE", False)  # read here, where the reader's calls can be counted
    monkeypatch.setattr(pdf_reader.PdfReader, "read", counted)
    for page in range(1, 21):
        section = note_section(engine, "slides.pdf", 1, 1, page=page)
        assert section.lines == [pages[page - 1]]
    assert len(calls) == 1
    (corpus / "slides.pdf").write_bytes(text_pdf(["Changed."] + pages[1:]))  # new bytes: read anew
    assert note_section(engine, "slides.pdf", 1, 1, page=1).lines == ["Changed."]
    assert len(calls) == 2


# -- 7. AES-encrypted PDFs --------------------------------------------------------
def test_aes_pdfs_that_any_viewer_opens_are_read(tmp_path):
    """pypdf decrypts AES only with the cryptography package, which nothing
    installed: an AES-128 PDF was skipped as "no text in any page (a scanned
    PDF?)", and an AES-256 one raised a plain Exception."""
    import tomllib

    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.replace(" ", "").startswith("cryptography") for d in dependencies)
    body = text_pdf(["Encrypted notes on gossip protocols and leader election."])
    corpus = corpus_with(tmp_path, {"aes128.pdf": encrypted(body, "AES-128"), "aes256.pdf": encrypted(body, "AES-256")})
    texts, skipped = load(corpus)
    assert skipped == {}
    assert all("gossip protocols" in texts[name] for name in ("aes128.pdf", "aes256.pdf"))


@pytest.mark.slow
def test_without_cryptography_the_warning_names_it(tmp_path):
    """Should the package still be missing (a broken install), the warning
    says so instead of blaming a scan."""
    body = text_pdf(["Encrypted notes on gossip protocols."])
    for algorithm in ("AES-128", "AES-256"):
        path = tmp_path / f"{algorithm}.pdf"
        path.write_bytes(encrypted(body, algorithm))
        code = (
            "import sys\n"
            "sys.modules['cryptography'] = None  # as if it were not installed\n"
            "from dsqa.sources.formats import pdf\n"
            "try:\n"
            f"    pdf.READER.read(open({str(path)!r}, 'rb').read())\n"
            "except ValueError as exc:\n"
            "    print(exc)\n"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.stdout.startswith("encrypted PDF that needs the cryptography package"), (algorithm, done)
        assert "pip install cryptography" in done.stdout


# -- 6. a corpus that is the whole machine, or the whole home folder ----------------
def test_the_filesystem_root_and_the_home_folder_are_refused_without_yes(tmp_path, fake_model, monkeypatch):
    """``--corpus /`` read 10,982 note-like files (190 MB: under both size
    limits). The root and the home folder as a whole are refused before
    anything is walked, saying why, unless ``--yes``."""
    from dsqa import CorpusTooLargeError

    home = tmp_path / "home"
    home.mkdir()
    (home / "todo.md").write_text(OK_NOTE)
    monkeypatch.setenv("HOME", str(home))
    settings = Settings(corpus_dir=home, index_dir=tmp_path / "index", model="fake-hash")
    with pytest.raises(CorpusTooLargeError, match=r"is your home folder as a whole.*dsqa reindex --yes"):
        DSQA(settings).reindex()
    result = invoke(settings, "reindex")
    assert result.exit_code == 1 and "is your home folder as a whole" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert list(DSQA(settings.with_(allow_large_corpus=True)).reindex().added) == ["todo.md"]
    assert invoke(settings, "reindex", "--yes").exit_code == 0
    with pytest.raises(CorpusTooLargeError, match=r"is the root of the filesystem.*dsqa reindex --yes"):
        load_corpus(Path("/"), CorpusReading(max_files=1_000_000))
    assert load_corpus(home / ".." / "home", CorpusReading(allow_whole=True)).notes[0].source == "todo.md"


def test_the_watch_goes_on_past_a_hostile_note(tmp_path, fake_model):
    """``dsqa watch`` stopped at the first hostile note saved in the folder."""
    pytest.importorskip("watchfiles")
    from dsqa.build.watch import Watcher, WatchTiming

    corpus = corpus_with(tmp_path, {})
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model="fake-hash")
    reports: list = []

    def wait_for(check):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not check():
            time.sleep(0.1)
        return check()

    with Watcher(settings, reports.append, WatchTiming(settle_ms=200, retry_seconds=0.5)) as watcher:
        assert watcher.ready.wait(60) and watcher.error is None
        (corpus / "deep.ipynb").write_text(DEEP_NOTEBOOK)
        assert wait_for(lambda: any("deep.ipynb" in dict(r.skipped) for r in reports)), reports
        (corpus / "raft.md").write_text("# Raft\nRaft elects a leader with randomized election timeouts.\n")
        assert wait_for(lambda: any("raft.md" in r.added for r in reports)), reports
        assert watcher.error is None
