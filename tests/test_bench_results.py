"""``python -m bench --only PART --update``: re-measuring some parts replaces
only their sections of bench/RESULTS.md (bench/results_file.py). Nothing is
measured here: the parts are stubs that add made-up rows."""

from __future__ import annotations

import re
import sys
from types import SimpleNamespace

import pytest
from conftest import ROOT

RESULTS = ROOT / "bench" / "RESULTS.md"
INFO = {"cpu": "Test CPU, 2 cores", "commit": "abc1234", "load average at start": "0.10 0.20 0.30"}


@pytest.fixture(scope="module")
def bench() -> SimpleNamespace:
    sys.path.insert(0, str(ROOT))
    try:
        import bench.__main__ as cli
        from bench import readme_table, results_file
        from bench.common import Table
    finally:
        sys.path.remove(str(ROOT))
    return SimpleNamespace(cli=cli, results_file=results_file, readme_table=readme_table, Table=Table)


def _part(bench: SimpleNamespace, name: str, figure: str = "1.00x", note: str = "") -> object:
    table = bench.Table(f"Stub table of {name}", ["way", "figure"])
    table.add("stub", figure)
    return bench.results_file.PartResult(name, {f"{name} headline": figure}, [table], note)


def _spans(bench: SimpleNamespace, text: str) -> dict[str, tuple[int, int]]:
    r = bench.results_file
    return {f"{section} {part}": span for section in (r.HEADLINES, r.TABLES) for part, span in r.blocks(text, section).items()}


def _without(bench: SimpleNamespace, text: str, part: str) -> str:
    """``text`` without ``part``'s two blocks and with the full run's
    "Written by" sentence: what must be left of the file as it was."""
    for key, (start, end) in sorted(_spans(bench, text).items(), key=lambda kv: -kv[1][0]):
        if key.endswith(f" {part}"):
            text = text[:start] + text[end:]
    return re.sub(r"(\(took [^)]*\)\.) .*$", rf"\1 {bench.results_file.ONE_RUN}", text, count=1, flags=re.M)


def _full_run(bench: SimpleNamespace) -> str:
    """The committed RESULTS.md as its full run wrote it: without the parts
    re-measured apart since (the tests below start from one run's file)."""
    text = RESULTS.read_text(encoding="utf-8")
    for part in bench.results_file.remeasured(text):
        text = _without(bench, text, part)
    return text


def test_the_committed_results_can_be_updated_part_by_part(bench):
    text = RESULTS.read_text(encoding="utf-8")
    bench.results_file.check(text)
    assert set(bench.results_file.blocks(text, bench.results_file.TABLES)) <= set(bench.cli.PARTS)


def test_replacing_one_part_leaves_every_other_byte(bench):
    old = _full_run(bench)
    note = bench.results_file.remeasured_note("python -m bench --only scale --update", "2030-01-02 03:04 UTC", 120, INFO, "1.00 1.00 1.00", "2.00 2.00 2.00")
    new = bench.results_file.update(old, [_part(bench, "scale", "9.99x", note)])
    start, end = bench.results_file.blocks(new, bench.results_file.TABLES)["scale"]
    assert "### Stub table of scale" in new[start:end] and "Scale curve" not in new
    assert "- scale headline: 9.99x" in new and "1,000,000 vectors, HNSW" not in new
    # The other parts' blocks, byte for byte, in their places.
    old_spans, new_spans = _spans(bench, old), _spans(bench, new)
    assert list(old_spans) == list(new_spans)
    for key, (s, e) in old_spans.items():
        if not key.endswith(" scale"):
            assert new[slice(*new_spans[key])] == old[s:e], key
    # And with the scale blocks taken out of both, nothing else changed but
    # the sentence naming the re-measured part.
    assert _without(bench, new, "scale") == _without(bench, old, "scale")
    written = next(line for line in new.splitlines() if line.startswith("Written by"))
    assert "except those of `scale`, re-measured apart" in written
    assert "load average at start 1.00 1.00 1.00, at end 2.00 2.00 2.00" in new[start:end]


def test_a_part_absent_from_the_file_is_appended(bench):
    old = _full_run(bench)
    assert "<!-- part ray -->" not in old
    new = bench.results_file.update(old, [_part(bench, "ray")])
    assert list(bench.results_file.blocks(new, bench.results_file.HEADLINES))[-1] == "ray"
    assert list(bench.results_file.blocks(new, bench.results_file.TABLES))[-1] == "ray"
    assert new.endswith(_part(bench, "ray").table_block())
    assert _without(bench, new, "ray") == old
    assert bench.readme_table.headlines(new)[-1] == ("ray headline", "1.00x")


def test_updating_a_part_again_replaces_its_first_update(bench):
    once = bench.results_file.update(_full_run(bench), [_part(bench, "ray", "1.00x")])
    twice = bench.results_file.update(once, [_part(bench, "ray", "2.00x")])
    assert twice.count("<!-- part ray -->") == 2  # one in Headlines, one in Tables
    assert "- ray headline: 2.00x" in twice and "1.00x" not in twice
    assert _without(bench, twice, "ray") == _without(bench, once, "ray")


def test_an_update_of_a_full_run_equals_that_run_with_the_part_measured_then(bench):
    r = bench.results_file
    args = (INFO, "python -m bench", "2030-01-01 00:00 UTC", 600)
    before = r.render([_part(bench, "query"), _part(bench, "kep", "1.00x"), _part(bench, "ray")], *args)
    after = r.update(before, [_part(bench, "kep", "3.00x")])
    assert after == r.render([_part(bench, "query"), _part(bench, "kep", "3.00x"), _part(bench, "ray")], *args)


def test_the_readme_table_names_the_parts_measured_apart(bench):
    old = _full_run(bench)
    assert "re-measured" not in bench.readme_table.table(old)
    note = bench.results_file.remeasured_note("python -m bench --only ray --update", "2030-01-02 03:04 UTC", 60, INFO, "1", "2")
    block = bench.readme_table.table(bench.results_file.update(old, [_part(bench, "ray", note=note)]))
    assert "re-measured apart later: part `ray` on 2030-01-02 03:04 UTC, commit abc1234);" in block
    assert "From the one run" not in block and "| ray headline | 1.00x |" in block


# -- python -m bench --only ... --update, with stub parts --------------------------------


@pytest.fixture
def stubbed(bench, monkeypatch, tmp_path):
    """bench's main with the machine description and every part stubbed;
    ``calls`` lists the parts run. The target is a copy of RESULTS.md."""
    calls: list[str] = []

    def stub(name: str):
        def part(run) -> None:
            calls.append(name)
            if name == "kep":
                raise RuntimeError("the stub kep part breaks")
            run.headlines[f"{name} headline"] = "4.00x"
            t = bench.Table(f"Stub table of {name}", ["way", "figure"])
            t.add("stub", "4.00x")
            run.table(t)

        return part

    monkeypatch.setattr(bench.cli, "RUNNERS", {name: stub(name) for name in bench.cli.PARTS})
    monkeypatch.setattr(bench.cli, "machine", lambda: dict(INFO))
    out = tmp_path / "RESULTS.md"
    out.write_text(_full_run(bench), encoding="utf-8")
    return SimpleNamespace(calls=calls, out=out)


def test_update_rewrites_only_the_named_parts(bench, stubbed):
    assert bench.cli.main(["--only", "baseline,scale", "--update", "--out", str(stubbed.out)]) == 0
    assert stubbed.calls == ["baseline", "scale"]
    new, old = stubbed.out.read_text(encoding="utf-8"), _full_run(bench)
    assert _without(bench, _without(bench, new, "baseline"), "scale") == _without(bench, _without(bench, old, "baseline"), "scale")
    for part in ("baseline", "scale"):
        start, end = bench.results_file.blocks(new, bench.results_file.TABLES)[part]
        assert new[start:end].split("\n", 2)[2].startswith(
            "Re-measured apart by `python -m bench --only baseline,scale --update --out "
        ), part
        assert "commit abc1234" in new[start:end] and "load average at start " in new[start:end]
    assert sorted(bench.results_file.remeasured(new)) == ["baseline", "scale"]


def test_a_part_that_fails_keeps_its_old_section(bench, stubbed, capsys):
    before = stubbed.out.read_bytes()
    assert bench.cli.main(["--only", "kep", "--update", "--out", str(stubbed.out)]) == 1
    assert stubbed.out.read_bytes() == before
    assert "part kep failed; its section of" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--only", "scale,scales"], "unknown part(s) scales; parts are query, answers, indexing, kep, baseline, scale"),
        (["--only", "nope", "--update"], "unknown part(s) nope"),
        (["--only", ","], "unknown part(s) ','"),
        (["--update"], "--update needs --only PART,..."),
        (["--only", "scale", "--update", "--quick"], "--update --quick would put quick figures into bench/RESULTS.md"),
    ],
)
def test_bad_options_are_one_line_and_measure_nothing(bench, stubbed, capsys, argv, says):
    assert bench.cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m bench: ") and says in err, err
    assert stubbed.calls == []


def test_a_file_without_part_markers_is_refused_before_measuring(bench, stubbed, capsys):
    old_style = re.sub(r"<!-- part \S+ -->\n\n?", "", _full_run(bench))
    stubbed.out.write_text(old_style, encoding="utf-8")
    assert bench.cli.main(["--only", "scale", "--update", "--out", str(stubbed.out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "outside any part marker" in err, err
    assert stubbed.calls == [] and stubbed.out.read_text(encoding="utf-8") == old_style
    missing = stubbed.out.with_name("missing.md")
    assert bench.cli.main(["--only", "scale", "--update", "--out", str(missing)]) == 2
    assert "cannot update" in capsys.readouterr().err and not missing.exists()


# -- the ray part's arithmetic, on made-up measurements ------------------------------------


def test_the_ray_part_reports_medians_and_ratios_to_the_local_path(bench, monkeypatch, tmp_path):
    seconds = {"local": [10.0, 12.0, 11.0], 1: [20.0, 22.0, 30.0], 2: [5.0, 6.0, 5.5]}

    def fake_worker(task: str, args: dict) -> dict:
        if task == "ray_sample":
            return {"texts": 400, "chunks": 100, "sentences": 340, "word_pieces": 22000}
        way = "local" if args["way"] == "local" else args["actors"]
        s = seconds[way].pop(0)
        ray = way != "local"
        return {"seconds": s, "one_text_s": 9.0 if ray else 0.1, "ray_init_s": 15.0 if ray else None,
                "model_load_s": None if ray else 1.5, "least_cosine": 0.999999, "encoder": "ray:onnx" if ray else "onnx"}

    monkeypatch.setattr(bench.cli, "worker", fake_worker)
    monkeypatch.setattr(bench.cli, "KEP_SOURCE", tmp_path)
    run = bench.cli.Run(quick=False, tmp=tmp_path)
    run.begin("ray")
    bench.cli.part_ray(run)
    (table,) = run.parts["ray"].tables
    rows = {row[0]: row for row in table.rows}
    assert [r[1:4] for r in table.rows] == [["11.0", "2,000", "1.00x"], ["22.0", "1,000", "0.50x"], ["5.50", "4,000", "2.00x"]]
    assert rows["Ray, 1 actor x 2 CPUs"][4] == "20.0 22.0 30.0" and rows["local path (no Ray)"][6] == "-"
    notes = " ".join(table.notes)
    assert "`ray.init(num_cpus=2)`, median 15.0 s" in notes and "median 9.0 s on Ray; 1.5 s to load the model" in notes
    assert "Load average at the part's start " in notes
    (headline,) = run.parts["ray"].headlines.values()
    assert headline.startswith("0.50x the throughput with 1 actor x 2 CPUs, 2.00x with 2 actors x 1 CPU; Ray start 15.0 s")


def test_a_run_with_out_writes_a_file_that_can_be_updated(bench, stubbed):
    fresh = stubbed.out.with_name("fresh.md")
    assert bench.cli.main(["--only", "query,scale", "--out", str(fresh)]) == 0
    text = fresh.read_text(encoding="utf-8")
    bench.results_file.check(text)
    assert list(bench.results_file.blocks(text, bench.results_file.TABLES)) == ["query", "scale"]
    assert bench.results_file.remeasured(text) == [] and bench.results_file.ONE_RUN in text
