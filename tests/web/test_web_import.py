"""``import dsqa.web`` does not import Gradio: the page's pure helpers
(rendering, note sections, safe HTML, the request guard) work without it;
only building or serving the page needs it."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_importing_dsqa_web_does_not_import_gradio():
    code = (
        "import sys, dsqa.web, dsqa.web.passage_html, dsqa.web.request_guard; "
        "print(sorted(m for m in ('gradio', 'gradio_client') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
