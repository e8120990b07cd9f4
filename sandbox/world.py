"""The sandbox world: Procore and one ERP product in memory, answering HTTP-shaped requests.

:meth:`SandboxWorld.handle` is a pure, synchronous request handler (no I/O, no sleeping): the
Starlette app (:mod:`sandbox.app`) and the in-process httpx transport
(:mod:`sandbox.transport`) both adapt HTTP to it. Procore answers at the root, the
ERP under ``/erp``, OAuth at ``/oauth/token`` (the ERP's at its own paths under ``/erp``:
:mod:`sandbox.erp_oauth`), the control endpoints under ``/_sandbox/``.

It is thread-safe: one lock guards the state, the call log and the fault plan.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from sandbox import commitments, control, erp_oauth, intacct, oauth, procore, qbo, seed, xero
from sandbox.faults import FaultPlan, FaultSettings
from sandbox.state import SandboxState
from sandbox.tokens import TokenLedger
from sandbox.wire import Request, Response

ERP_PREFIX = "/erp"
_ERP_HANDLERS: dict[str, Callable[[SandboxState, Request], Response]] = {
    "qbo": qbo.handle,
    "xero": xero.handle,
    "intacct": intacct.handle,
}


class SandboxWorld:
    """All of the sandbox's state, and the handler that answers requests against it."""

    def __init__(
        self, erp: str = "qbo", *, auto_unlink: bool = False, token_lifetime: int | None = None
    ) -> None:
        """``token_lifetime``: seconds every issued access token lives (each product's own
        lifetime when None); see :mod:`sandbox.tokens`."""
        if erp not in seed.ERP_KEYS:
            raise ValueError(f"erp must be one of {', '.join(seed.ERP_KEYS)}, not {erp!r}")
        self.erp = erp
        self._lock = threading.RLock()
        self._token_lifetime = token_lifetime
        self._state = SandboxState.from_seed(erp)
        self._state.tokens = TokenLedger(token_lifetime)
        self._state.auto_unlink = auto_unlink
        self._faults = FaultPlan(FaultSettings())

    @property
    def product_name(self) -> str:
        return seed.PRODUCT_NAMES[self.erp]

    @property
    def erp_company(self) -> str:
        """The seeded company id of this ERP (QBO realm, Xero tenant, Intacct company)."""
        return seed.ERP_COMPANIES[self.erp]

    def reset(self) -> None:
        """Back to the seed: data, issued tokens, idempotency keys, the call log. Faults and
        auto-unlink stay."""
        with self._lock:
            auto_unlink = self._state.auto_unlink
            self._state = SandboxState.from_seed(self.erp)
            self._state.tokens = TokenLedger(self._token_lifetime)
            self._state.auto_unlink = auto_unlink

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

    def record_call(self, request: Request, status: int) -> None:
        """Log one API call (its path with query string); status 0 when no answer."""
        with self._lock:
            self._state.calls.append(_call(self._state, request, status))

    def token_grants(self) -> list[dict[str, Any]]:
        """Every token the token endpoints issued since the last reset, oldest first."""
        with self._lock:
            return [dict(grant) for grant in self._state.tokens.grants]

    def calls(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(call) for call in self._state.calls]

    def next_request_id(self) -> str:
        with self._lock:
            return self._state.next_request_id()

    def rate_key(self, request: Request) -> str:
        """Whose Procore rate budget a call counts against: the users' (``procore``), or a
        service account's own (Procore counts a service account per company, apart from the
        users: ``api_essentials/rate_limiting.md``)."""
        token = request.bearer_token()
        with self._lock:
            user = self._state.user_for_token(token) if token else None
        return f"procore:{user.login}" if user is not None and user.service_account else "procore"

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
                state.calls.append(_call(state, request, response.status))
                if request.method == "GET" and request.path.startswith(ERP_PREFIX + "/"):
                    state.erp_reads.add(request.path.rsplit("/", 1)[-1])
            return response.with_headers({"X-Request-Id": self._state.next_request_id()})

    def _dispatch(self, state: SandboxState, request: Request) -> Response:
        path = request.path
        if path == "/oauth/token":
            return oauth.handle(state, request)
        if path == ERP_PREFIX or path.startswith(ERP_PREFIX + "/"):
            erp_request = replace(request, path=path.removeprefix(ERP_PREFIX) or "/")
            if erp_oauth.owns(self.erp, erp_request.path):
                return erp_oauth.handle(state, erp_request)
            return _ERP_HANDLERS[self.erp](state, erp_request)
        return procore.handle(state, request)


def _call(state: SandboxState, request: Request, status: int) -> dict[str, Any]:
    """A call log entry: ``actor`` is the Procore login (user or service account) of the bearer
    token, ``"erp-client"`` for the ERP's API, None when no known token came."""
    token = request.bearer_token()
    actor: str | None = None
    if request.path == ERP_PREFIX or request.path.startswith(ERP_PREFIX + "/"):
        actor = "erp-client" if token else None
    elif token:
        user = state.user_for_token(token)
        actor = user.login if user is not None else None
    return {"method": request.method, "path": request.target, "status": status, "actor": actor}
