"""The sandbox: a local simulator of Procore and one ERP product (``spec/sandbox.md``).

* :class:`SandboxWorld` — all state, in memory, and a pure request handler;
* :class:`SandboxServer` — that world served by uvicorn on a loopback port;
* :func:`in_process_transport` — that world behind an httpx transport, without a server.

The server and the transport are imported on first use, so that reading the seed or building a
world does not import uvicorn, Starlette or httpx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.seed import PRODUCT_NAMES
from sandbox.world import SandboxWorld

if TYPE_CHECKING:
    from sandbox.server import SandboxServer, serve_forever
    from sandbox.transport import in_process_transport

__all__ = [
    "PRODUCT_NAMES",
    "SandboxServer",
    "SandboxWorld",
    "in_process_transport",
    "serve_forever",
]


def __getattr__(name: str) -> Any:
    if name in ("SandboxServer", "serve_forever"):
        from sandbox import server

        return getattr(server, name)
    if name == "in_process_transport":
        from sandbox import transport

        return transport.in_process_transport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
