"""The README's configuration table is generated from dsqa/settings.py and
dsqa/environment.py (``python -m dsqa.configuration --update``); this fails
when they disagree, and when a ``DSQA_*`` variable is read anywhere but
dsqa/environment.py or is missing from it."""

from __future__ import annotations

import re
from dataclasses import fields

from conftest import ROOT

from dsqa import configuration, environment
from dsqa.settings import Settings


def test_the_readme_table_is_the_generated_one():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index(configuration.START) + len(configuration.START) : readme.index(configuration.END)]
    assert block.strip("\n") == configuration.table(), "run: python -m dsqa.configuration --update"


def test_every_field_and_variable_is_in_the_table():
    table = configuration.table()
    listed = [name for _, members in configuration.sections() for name, _ in members]
    assert sorted(listed) == sorted(f.name for f in fields(Settings)), "a field outside the sections of settings.py"
    assert all(f"| `{name}` |" in table for name in listed)
    assert all(f"| `{v.name}` |" in table for v in environment.VARIABLES)
    assert all(meaning and meaning != "as above" for _, members in configuration.sections() for _, meaning in members[:1])


def test_dsqa_variables_are_read_only_in_the_environment_module():
    names = {v.name for v in environment.VARIABLES}
    assert len(names) == len(environment.VARIABLES)
    assert all(v.field in {f.name for f in fields(Settings)} for v in environment.VARIABLES if v.field)
    for path in sorted((ROOT / "dsqa").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert set(re.findall(r"\bDSQA_[A-Z_]+\b", text)) <= names, path
        if path.name != "environment.py":
            assert not re.search(r"""(environ\.get|environ\[|getenv)\(?\s*["']DSQA_""", text), path


def test_a_variable_gives_its_field_default(monkeypatch, tmp_path):
    monkeypatch.setenv(environment.CORPUS.name, str(tmp_path))
    monkeypatch.setenv(environment.REFUSAL_THRESHOLD.name, "0.5")
    monkeypatch.setenv(environment.ALLOW_ORIGINS.name, "http://localhost:3000, http://127.0.0.1:8000")
    made = Settings()
    assert made.corpus_dir == tmp_path and made.refusal_threshold == 0.5
    assert made.allow_origins == ("http://localhost:3000", "http://127.0.0.1:8000")
