"""Procore's who-am-I and permission calls: ``/me``, the company user, tool access levels."""

from __future__ import annotations

from typing import Any

from sandbox import seed
from sandbox.procore_wire import Context, not_found, procore_error, wrong_company
from sandbox.wire import Response, json_response, query_int


def me(ctx: Context) -> Response:
    """``GET /rest/v1.0/me``: the user behind the token; ``name`` only when ``company_id`` or
    ``project_id`` is passed. A service account's token needs ``Procore-Company-Id`` here too."""
    user = ctx.user
    if user.service_account and not ctx.request.headers.get("procore-company-id", "").strip():
        return procore_error(400, "Missing Procore-Company-Id header!")
    body: dict[str, Any] = {"id": user.id, "login": user.login}
    if "company_id" in ctx.request.query or "project_id" in ctx.request.query:
        body["name"] = user.name
    return json_response(200, body)


def company_me(ctx: Context) -> Response:
    """``GET /rest/v1.1/companies/{id}/me``: the company user and its
    ``erp_integrated_accountant`` flag."""
    refusal = wrong_company(ctx.params["company_id"])
    if refusal is not None:
        return refusal
    user = ctx.user
    first, _, last = user.name.partition(" ")
    body = {
        "id": user.id,
        "login": user.login,
        "name": user.name,
        "first_name": first,
        "last_name": last,
        "email_address": user.login,
        "is_active": True,
        "is_employee": True,
        "job_title": "Project Accountant",
        "erp_integrated_accountant": user.erp_integrated_accountant,
    }
    return json_response(200, body)


def permissions(ctx: Context) -> Response:
    """``GET /rest/v1.0/settings/permissions?project_id=P`` (Commitments) or ``?company_id=C``
    (ERP Integrations)."""
    query = ctx.request.query
    if "project_id" in query:
        if query_int(query, "project_id") not in seed.PROJECTS:
            return not_found(f"Couldn't find Project with 'id'={query['project_id'][:40]}")
        tool = _tool(3, "commitments", "Commitments", ctx.user.commitments)
    elif "company_id" in query:
        refusal = wrong_company(query["company_id"])
        if refusal is not None:
            return refusal
        tool = _tool(41, "erp_integrations", "ERP Integrations", ctx.user.erp_integrations)
    else:
        return procore_error(400, "project_id or company_id is missing")
    return json_response(200, {"tools": [tool]})


def _tool(tool_id: int, name: str, friendly_name: str, level: str) -> dict[str, Any]:
    return {
        "id": tool_id,
        "name": name,
        "friendly_name": friendly_name,
        "user_access_level": {"id": seed.ACCESS_LEVELS.index(level), "name": level},
    }
