"""Gradio, for the modules that build and serve the page: imported here
only, after switching its analytics off (it reads these at import time), and
a one-line error when it is not installed. The pure helpers of the page
(:mod:`~dsqa.web.render`, :mod:`~dsqa.web.sections`,
:mod:`~dsqa.web.passage_html`, :mod:`~dsqa.web.request_guard`) never import
it."""

from __future__ import annotations

import os

from ..errors import DsqaError

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

try:
    import gradio as gr  # noqa: E402
except ImportError as exc:  # pragma: no cover - depends on the install
    raise DsqaError("the web page needs Gradio: pip install 'dsqa[web]'") from exc

__all__ = ["gr"]
