"""Procore's REST API as the sandbox answers it: the route table, authentication and the
``Procore-Company-Id`` rule.

Every call needs a bearer token the sandbox knows (a seeded ``sandbox-<name>`` token or one
issued by ``/oauth/token``), else 401. Every call but ``GET /rest/v1.0/me`` needs the
``Procore-Company-Id`` header: missing → 400 "Missing Procore-Company-Id header!", another
company → 403. Unknown routes → 404.
"""

from __future__ import annotations

import re

from sandbox import commitments, identity, requisitions, sync
from sandbox.procore_wire import Context, Route, not_found, procore_error
from sandbox.seed import COMPANY_ID
from sandbox.state import SandboxState
from sandbox.wire import BadBody, Request, Response

_REQUISITION = r"/rest/v1\.1/requisitions/(?P<requisition_id>\d{1,18})"
_COMMITMENT = (
    r"/rest/v1\.0/(?P<kind>work_order_contract|purchase_order_contract)s"
    r"/(?P<commitment_id>\d{1,18})"
)

ROUTES: tuple[Route, ...] = (
    Route("GET", re.compile(r"/rest/v1\.0/me"), identity.me, needs_company=False),
    Route("GET", re.compile(r"/rest/v1\.1/companies/(?P<company_id>\d+)/me"), identity.company_me),
    Route("GET", re.compile(r"/rest/v1\.0/settings/permissions"), identity.permissions),
    Route("GET", re.compile(r"/rest/v1\.1/requisitions"), requisitions.list_requisitions),
    Route("POST", re.compile(r"/rest/v1\.1/requisitions"), requisitions.create_requisition),
    Route("GET", re.compile(_REQUISITION), requisitions.get_requisition),
    Route("DELETE", re.compile(_REQUISITION), requisitions.delete_requisition),
    Route("GET", re.compile(_COMMITMENT), commitments.get_commitment),
    Route("PATCH", re.compile(_COMMITMENT), commitments.update_commitment),
    Route("DELETE", re.compile(_COMMITMENT), commitments.delete_commitment),
    Route(
        "PATCH",
        re.compile(r"/rest/v1\.0/companies/(?P<company_id>\d+)/external_data/sync"),
        sync.external_data_sync,
    ),
)


def handle(state: SandboxState, request: Request) -> Response:
    route, params = _match(request)
    if route is None:
        return not_found(f"No route matches {request.method} {request.path[:200]}", "RoutingError")
    token = request.bearer_token()
    user = state.user_for_token(token) if token else None
    if user is None:
        return procore_error(401, "The access token is missing, invalid, expired or revoked.")
    if route.needs_company:
        company = request.headers.get("procore-company-id", "").strip()
        if not company:
            return procore_error(400, "Missing Procore-Company-Id header!")
        if company != str(COMPANY_ID):
            return procore_error(403, f"You do not have access to company {company[:40]}.")
    try:
        return route.handler(Context(state, request, user, params))
    except BadBody as exc:
        return procore_error(400, str(exc))


def _match(request: Request) -> tuple[Route | None, dict[str, str]]:
    for route in ROUTES:
        match = route.pattern.fullmatch(request.path)
        if match is not None and route.method == request.method:
            return route, match.groupdict()
    return None, {}
