"""The sandbox over HTTP: a Starlette app whose one catch-all route adapts requests to
:meth:`SandboxWorld.respond <sandbox.world.SandboxWorld.respond>`.

For API calls only (never ``/_sandbox/*``), in this order: the rate limits (:mod:`sandbox.limits`:
Procore's for Procore, the ERP's in its product's dialect for the ERP's API; refused calls never
reach the world), artificial latency, then injected faults (:mod:`sandbox.faults`), drawn before
the world handles the call so that a faulted call changes nothing. Faulted and refused calls are
still written to the call log.

Control endpoints of the limits (answered here, where the limiters live):

================================= ================================================================
``GET /_sandbox/limits``          ``{"procore": {...}, "erp": {...}}``: each window's ``limit``,
                                  ``seconds``, ``remaining`` and ``frees_at`` (Unix seconds, when
                                  exhausted)
``POST /_sandbox/limits/exhaust`` ``{"limit": "day"}``: use up that ERP window (Xero: ``minute``,
                                  ``appminute``, ``day``), as if other calls had been made now
================================= ================================================================

``POST /_sandbox/reset`` also clears every window.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sandbox import control, erp_oauth
from sandbox.faults import (
    DEFAULT_TIMEOUT_SECONDS,
    FAULT_KINDS,
    GARBAGE_BODY,
    FaultSettings,
    fault_response,
)
from sandbox.limits import ErpLimits, RateLimiter, erp_limits, parse_rate_limit
from sandbox.wire import JSON_TYPE, BadBody, Request, Response, json_response
from sandbox.world import ERP_PREFIX, SandboxWorld

MAX_BODY_BYTES = 5 * 1024 * 1024


def create_app(
    world: SandboxWorld,
    *,
    latency_ms: float = 0,
    fault_rate: float = 0.0,
    fault_kinds: Iterable[str] | None = None,
    fault_seed: int | None = None,
    rate_limit: str | tuple[int, float] | None = None,
    fault_timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    erp_rate_limit: str | None = None,
) -> Starlette:
    """The ASGI app serving ``world``; ``rate_limit`` is Procore's, ``"N/H"`` or
    ``(N, window_seconds)``; ``erp_rate_limit`` the ERP's (``"60/min,5000/day"``, see
    :func:`sandbox.limits.erp_limits`); each a generous default when None.

    The fault arguments configure ``world`` (``POST /_sandbox/faults`` changes them later).
    """
    payload = {
        "rate": fault_rate,
        "kinds": list(fault_kinds or FAULT_KINDS),
        "seed": fault_seed,
        "timeout_seconds": fault_timeout_seconds,
    }
    world.configure_faults(FaultSettings.from_payload(payload, FaultSettings()))
    limiter = (
        RateLimiter(*parse_rate_limit(rate_limit)) if rate_limit is not None
        else RateLimiter.generous()
    )
    endpoint = SandboxEndpoint(
        world, latency_seconds=latency_ms / 1000, limiter=limiter,
        erp_limits=erp_limits(world.erp, erp_rate_limit),
    )
    return Starlette(routes=[Route("/{path:path}", endpoint)])


class SandboxEndpoint:
    """The raw ASGI endpoint (raw, so that a ``reset`` fault can break off an answer)."""

    def __init__(
        self,
        world: SandboxWorld,
        *,
        latency_seconds: float,
        limiter: RateLimiter,
        erp_limits: ErpLimits,
    ) -> None:
        self.world = world
        self.latency_seconds = latency_seconds
        self.limiter = limiter
        self.erp_limits = erp_limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request, complete = await _read_request(scope, receive)
        if control.is_control(request.path):
            await _send(send, self._control(request) if complete else _too_large())
        elif not complete:
            await self._unhandled(send, request, _too_large())
        else:
            await self._api_call(request, receive, send)

    def _control(self, request: Request) -> Response:
        path = request.path.removeprefix(control.PREFIX)
        if (request.method, path) == ("GET", "/limits"):
            body = {"procore": self.limiter.describe(), "erp": self.erp_limits.describe()}
            return json_response(200, body)
        if (request.method, path) == ("POST", "/limits/exhaust"):
            try:
                name = request.json_object().get("limit")
                self.erp_limits.exhaust(str(name))
            except (BadBody, KeyError):
                names = [window.name for window in self.erp_limits.windows]
                return json_response(400, {"message": f'give {{"limit": NAME}}, NAME in {names}'})
            return json_response(200, self.erp_limits.describe())
        response = self.world.respond(request)
        if (request.method, path) == ("POST", "/reset") and response.status == 200:
            self.limiter.reset()
            self.erp_limits.reset()
        return response

    async def _api_call(self, request: Request, receive: Receive, send: Send) -> None:
        erp = _erp_api(self.world.erp, request.path)
        rate_headers: Mapping[str, str] = {}
        if erp:
            refusal, rate_headers = self.erp_limits.admit()
            if refusal is not None:
                await self._unhandled(send, request, refusal)
                return
        else:
            admitted, rate_headers = self.limiter.admit(self.world.rate_key(request))
            if not admitted:
                await self._unhandled(send, request, self.limiter.refusal(rate_headers))
                return
        try:
            await self._answer(request, receive, send, rate_headers, erp=erp)
        finally:
            if erp:
                self.erp_limits.done()

    async def _answer(
        self, request: Request, receive: Receive, send: Send, rate_headers: Mapping[str, str],
        *, erp: bool,
    ) -> None:
        if self.latency_seconds > 0:
            await asyncio.sleep(self.latency_seconds)
        kind = self.world.draw_fault()
        if kind == "timeout":
            await self._time_out(request, receive, send)
        elif kind == "reset":
            await self._break_off(request, send)
        elif kind == "429" and erp:  # each ERP's 429 in its own dialect, never Procore's
            await self._unhandled(send, request, self.erp_limits.injected())
        elif kind is not None:
            await self._unhandled(send, request, fault_response(kind, rate_headers))
        else:
            await _send(send, self.world.respond(request).with_headers(rate_headers))

    async def _unhandled(self, send: Send, request: Request, response: Response) -> None:
        """Answer without the world handling the call; log it all the same."""
        self.world.record_call(request, response.status)
        request_id = self.world.next_request_id()
        await _send(send, response.with_headers({"X-Request-Id": request_id}))

    async def _time_out(self, request: Request, receive: Receive, send: Send) -> None:
        """No answer for ``timeout_seconds`` (or until the client gives up), then 504."""
        self.world.record_call(request, 0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_disconnect(receive), self.world.fault_settings.timeout_seconds)
        answer = json_response(504, {"message": "Gateway timeout (injected)"})
        await _send(send, answer.with_headers({"X-Request-Id": self.world.next_request_id()}))

    async def _break_off(self, request: Request, send: Send) -> None:
        """Start an answer and stop half-way: the server then drops the connection."""
        self.world.record_call(request, 0)
        start = {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", JSON_TYPE.encode()),
                (b"content-length", str(len(GARBAGE_BODY) * 4).encode()),
            ],
        }
        await send(start)
        await send({"type": "http.response.body", "body": GARBAGE_BODY, "more_body": True})


def _too_large() -> Response:
    return json_response(413, {"message": f"request bodies are limited to {MAX_BODY_BYTES} bytes"})


def _erp_api(erp: str, path: str) -> bool:
    """Whether ``path`` is the ERP's API (its OAuth endpoints are not: other hosts, in reality)."""
    if not (path == ERP_PREFIX or path.startswith(ERP_PREFIX + "/")):
        return False
    return not erp_oauth.owns(erp, path.removeprefix(ERP_PREFIX) or "/")


async def _read_request(scope: Scope, receive: Receive) -> tuple[Request, bool]:
    """The request, and whether its body was within MAX_BODY_BYTES (it is dropped otherwise)."""
    chunks: list[bytes] = []
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= MAX_BODY_BYTES:
            chunks.append(chunk)
        more = message.get("more_body", False)
    raw_query = scope.get("query_string", b"").decode("latin-1")
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        headers[name.decode("latin-1").lower()] = value.decode("latin-1")
    request = Request(
        method=scope["method"],
        path=scope["path"],
        query=dict(parse_qsl(raw_query, keep_blank_values=True)),
        headers=headers,
        body=b"".join(chunks) if size <= MAX_BODY_BYTES else b"",
        raw_query=raw_query,
    )
    return request, size <= MAX_BODY_BYTES


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send(send: Send, response: Response) -> None:
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in response.headers.items()
    ]
    headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
