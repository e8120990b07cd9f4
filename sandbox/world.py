"""The sandbox world: Procore and one ERP product in memory, answering HTTP-shaped requests.

:meth:`SandboxWorld.handle` is a pure, synchronous request handler (no I/O, no sleeping): the
Starlette app (:mod:`sandbox.app`) and the in-process httpx transport
(:mod:`sandbox.transport`) both adapt HTTP to it. Procore answers at the root, the
ERP under ``/erp``, OAuth at ``/oauth/token``, the control endpoints under ``/_sandbox/``.

It is thread-safe: one lock guards the state, the call log and the fault plan.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from sandbox import commitments, control, intacct, oauth, procore, qbo, seed, xero
from sandbox.faults import FaultPlan, FaultSettings
from sandbox.state import SandboxState
from sandbox.wire import Request, Response

ERP_PREFIX = "/erp"
_ERP_HANDLERS: dict[str, Callable[[SandboxState, Request], Response]] = {
    "qbo": qbo.handle,
    "xero": xero.handle,
    "intacct": intacct.handle,
}


class SandboxWorld:
    """All of the sandbox's state, and the handler that answers requests against it."""

    def __init__(self, erp: str = "qbo") -> None:
        if erp not in seed.ERP_KEYS:
            raise ValueError(f"erp must be one of {', '.join(seed.ERP_KEYS)}, not {erp!r}")
        self.erp = erp
        self._lock = threading.RLock()
        self._state = SandboxState.from_seed(erp)
        self._faults = FaultPlan(FaultSettings())

    @property
    def product_name(self) -> str:
        return seed.PRODUCT_NAMES[self.erp]

    @property
    def erp_company(self) -> str:
        """The seeded company id of this ERP (QBO realm, Xero tenant, Intacct company)."""
        return seed.ERP_COMPANIES[self.erp]

    def reset(self) -> None:
        """Back to the seed: data, issued tokens, idempotency keys, the call log. Faults stay."""
        with self._lock:
            self._state = SandboxState.from_seed(self.erp)

    # --- what the people around the APIs do (also ``/_sandbox/...``) ---------------------------

    def accept_commitment(self, commitment_id: int) -> dict[str, Any]:
        """The accounting approver accepts the commitment sent back to the ERP: Procore's
        connector creates a new ERP document and sets the commitment's ``origin_id`` and
        ``origin_code``. The commitment and its document, product-neutral; raises
        :class:`~sandbox.commitments.ExportRefused` (a ValueError) when it cannot be accepted."""
        with self._lock:
            record = commitments.accept_export(self._state, commitment_id)
            return commitments.commitment_state(self._state, record)

    def commitments(self, project_id: int | None = None) -> list[dict[str, Any]]:
        """Every commitment (of ``project_id``), deleted ones too, with its ERP document."""
        with self._lock:
            state = self._state
            return [
                commitments.commitment_state(state, record)
                for record in sorted(state.commitments.values(), key=lambda r: r.id)
                if project_id is None or record.project_id == project_id
            ]

    # --- faults (applied by the HTTP app, configured here so that /_sandbox/faults works) -----

    @property
    def fault_settings(self) -> FaultSettings:
        with self._lock:
            return self._faults.settings

    def configure_faults(self, settings: FaultSettings) -> None:
        with self._lock:
            self._faults = FaultPlan(settings)

    def draw_fault(self) -> str | None:
        """The fault for the next API call, or None."""
        with self._lock:
            return self._faults.draw()

    # --- the call log --------------------------------------------------------------------

    def record_call(self, method: str, target: str, status: int) -> None:
        """Log one API call (``target`` = path with query string); status 0 when no answer."""
        with self._lock:
            self._state.calls.append({"method": method, "path": target, "status": status})

    def calls(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(call) for call in self._state.calls]

    def next_request_id(self) -> str:
        with self._lock:
            return self._state.next_request_id()

    # --- requests ------------------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes = b"",
        *,
        raw_query: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one request: ``(status, headers, body)``.

        ``query`` holds one value per name (for a multi-dict, the last one counts); ``raw_query``
        is the query string as sent, for the call log (rebuilt from ``query`` when omitted).
        """
        request = Request(
            method=method.upper(),
            path=path,
            query={str(name): str(value) for name, value in query.items()},
            headers={name.lower(): value for name, value in headers.items()},
            body=body,
            raw_query=urlencode(list(query.items())) if raw_query is None else raw_query,
        )
        response = self.respond(request)
        return response.status, dict(response.headers), response.body

    def respond(self, request: Request) -> Response:
        """Answer ``request``, log it unless it is a control call, stamp ``X-Request-Id``."""
        with self._lock:
            state = self._state
            if control.is_control(request.path):
                response = control.handle(self, state, request)
            else:
                response = self._dispatch(state, request)
                state.calls.append(
                    {"method": request.method, "path": request.target, "status": response.status}
                )
            return response.with_headers({"X-Request-Id": self._state.next_request_id()})

    def _dispatch(self, state: SandboxState, request: Request) -> Response:
        path = request.path
        if path == "/oauth/token":
            return oauth.handle(state, request)
        if path == ERP_PREFIX or path.startswith(ERP_PREFIX + "/"):
            erp_request = replace(request, path=path.removeprefix(ERP_PREFIX) or "/")
            return _ERP_HANDLERS[self.erp](state, erp_request)
        return procore.handle(state, request)
