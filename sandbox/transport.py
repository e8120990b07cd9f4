"""An httpx transport that answers from a :class:`SandboxWorld` in-process: no server, no
latency, no faults, no rate limits. For benchmarks and narrow tests of the real clients."""

from __future__ import annotations

from urllib.parse import parse_qsl

import httpx

from sandbox.world import SandboxWorld


def in_process_transport(world: SandboxWorld) -> httpx.MockTransport:
    """A transport for ``httpx.Client(transport=...)`` (or ``AsyncClient``) backed by ``world``."""

    def answer(request: httpx.Request) -> httpx.Response:
        raw_query = request.url.query.decode("ascii", errors="replace")
        status, headers, body = world.handle(
            request.method,
            request.url.path,
            dict(parse_qsl(raw_query, keep_blank_values=True)),
            request.headers,
            request.content,
            raw_query=raw_query,
        )
        return httpx.Response(status, headers=headers, content=body, request=request)

    return httpx.MockTransport(answer)
