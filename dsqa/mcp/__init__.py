"""``dsqa mcp``: the notes as tools for an AI assistant, over the Model
Context Protocol (the official ``mcp`` SDK, the ``dsqa[mcp]`` extra).

A face, like the CLI and the page: each tool calls one method of the
library's engine (:meth:`DSQA.ask`, :meth:`DSQA.search`,
:meth:`DSQA.read_note`, :meth:`DSQA.status`) and returns its JSON view; a
user's mistake comes back as an MCP tool error carrying dsqa's one-line
message. :func:`build_server` makes the server, :func:`serve` runs it over
stdio, and :func:`dsqa.mcp.http.serve_http` over streamable HTTP behind the
page's request guard (``dsqa mcp --http``).
"""

from __future__ import annotations

from ..errors import DsqaError

#: What ``dsqa mcp`` says when the SDK is not installed.
MISSING_SDK = "dsqa mcp needs the MCP SDK: pip install 'dsqa[mcp]'"

try:
    import mcp  # noqa: F401  (the SDK, not this package: imports are absolute)
except ImportError as exc:
    raise DsqaError(MISSING_SDK) from exc

from .server import INSTRUCTIONS, TOOLS, build_server, serve  # noqa: E402

__all__ = ["INSTRUCTIONS", "MISSING_SDK", "TOOLS", "build_server", "serve"]
