"""What the README shows a new user first (issue 24): runnable commands
before it says how to put ``dsqa`` on the PATH, no pasted figures that go
stale, and the server-security, Ray and crash-safety detail in docs/, linked
from it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
#: The README less its generated configuration table, which names every
#: Settings field and DSQA_* variable (tests/test_configuration.py checks it).
PROSE = re.sub(r"<!-- configuration:start -->.*<!-- configuration:end -->", "", README, flags=re.S)
#: A field or variable name, which the configuration table may show.
NAME = re.compile(r"`?\$?([a-z_]+|DSQA_[A-Z_]+)`?")
COMMAND = re.compile(r"(?<![\w/.-])dsqa (ask|search|serve|reindex|status|watch|eval|mcp)\b")


def test_no_bare_dsqa_before_the_venv_is_activated():
    """Up to the line that says how to activate the venv, every command is
    the venv's own (.venv/bin/dsqa): a bare `dsqa` is not on the PATH yet."""
    before = README[: README.index("source .venv/bin/activate")]
    bare = [m.group(0) for m in COMMAND.finditer(before)]
    assert not bare, bare


def test_the_example_output_pastes_no_scores():
    """Scores move with every change to the notes or the ranking: a pasted
    one goes stale (0.908 in the README against 0.951 from the same command)."""
    assert not re.search(r"\(score \d", README)


def test_security_ray_and_crash_detail_live_in_docs():
    moved = {
        "docs/web-security.md": ["rebinds its own name to 127.0.0.1", "`$DSQA_ALLOW_ORIGINS`", "raw HTML off"],
        "docs/ray.md": ["GCS address", "ray_max_retries", "`ray_connect_timeout`"],
        "docs/reliability.md": ["os.replace", "SIGKILLs a", "O_NOFOLLOW", "CRC-32"],
    }
    for doc, phrases in moved.items():
        text = (ROOT / doc).read_text(encoding="utf-8")
        assert f"]({doc})" in README, f"the README does not link {doc}"
        for phrase in phrases:
            assert phrase in text, (doc, phrase)
            # The table names every field and variable; the detail itself
            # stays in docs/, out of the table as out of the prose.
            assert phrase not in (PROSE if NAME.fullmatch(phrase) else README), phrase
