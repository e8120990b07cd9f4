"""The Procore REST client (see spec/remote-apis.md), and the OAuth token exchange."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx

from integrations.auth import RenewingBearer, TokenSource
from integrations.errors import RemoteNotFound, RemoteRefused
from integrations.http import HttpBacked, HttpClient, Reply, RetryPolicy
from integrations.models import COMMITMENT_KINDS, Commitment, Requisition, User
from integrations.shape import Shape, remote_words

SYSTEM = "procore"
LABEL = "Procore"
REQUISITION_STATUSES = frozenset({
    "draft", "under_review", "revise_and_resubmit", "approved", "approved_as_noted",
    "pending_owner_approval",
})
# Procore's status enums per commitment resource (capitalised, unlike requisition statuses)
COMMITMENT_STATUSES = {
    "work_order_contract": frozenset({
        "Draft", "Out For Bid", "Out For Signature", "Approved", "Complete", "Terminated", "Void",
    }),
    "purchase_order_contract": frozenset({
        "Draft", "Processing", "Submitted", "Partially Received", "Received", "Approved", "Closed",
    }),
}
_COMMITMENT_MONEY = (
    "grand_total", "revised_contract", "approved_change_orders", "pending_change_orders",
    "remaining_balance_outstanding", "total_payments", "total_requisitions_amount",
    "percentage_paid", "retainage_percent",
)
_COMMITMENT_DATES = (
    "contract_date", "contract_start_date", "contract_estimated_completion_date",
    "execution_date", "issued_on_date", "signed_contract_received_date", "delivery_date",
)
ACCESS_LEVELS = frozenset({"None", "Read Only", "Standard", "Admin"})
PER_PAGE = 100
MAX_PAGES = 1000
_NEXT_LINK = re.compile(r"""rel\s*=\s*"?next"?""", re.IGNORECASE)


class ProcoreClient(HttpBacked):
    """Implements :class:`integrations.base.ProcoreAPI` over HTTP; close it (or use ``with``)."""

    def __init__(
        self,
        base_url: str,
        token: str | TokenSource,
        company_id: int,
        *,
        policy: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``token``: a bearer token, or a source that renews it (see :mod:`integrations.auth`)."""
        self.company_id = company_id
        headers = {"Accept": "application/json"}
        if isinstance(token, str):
            headers["Authorization"] = f"Bearer {token}"
        self._http = HttpClient(
            system=SYSTEM,
            label=LABEL,
            base_url=base_url,
            headers=headers,
            secrets=(token,) if isinstance(token, str) else (),
            policy=policy,
            transport=transport,
            auth=None if isinstance(token, str) else RenewingBearer(token),
        )
        self._company = {"Procore-Company-Id": str(company_id)}

    def __repr__(self) -> str:
        return f"ProcoreClient(company_id={self.company_id})"

    # -- identity and permissions ------------------------------------------------------------

    def me(self) -> User:
        """``/me`` with ``company_id`` (Procore sends ``name`` only then) and the company header
        (which a service account's token needs)."""
        reply = self._get("/rest/v1.0/me", params={"company_id": self.company_id})
        shape = self._shape(reply)
        body = shape.mapping(reply.body, "the user")
        return User(
            id=shape.req_int(body, "id"),
            login=shape.req_text(body, "login"),
            name=shape.req_text(body, "name"),
        )

    def can_push_to_accounting(self) -> bool:
        reply = self._get(f"/rest/v1.1/companies/{self.company_id}/me")
        shape = self._shape(reply)
        body = shape.mapping(reply.body, "the company user")
        return shape.boolean(body, "erp_integrated_accountant", optional=True) is True

    def tool_levels(self, *, project_id: int | None = None) -> dict[str, str]:
        scope = {"project_id": project_id} if project_id is not None else {
            "company_id": self.company_id
        }
        reply = self._get("/rest/v1.0/settings/permissions", params=scope)
        shape = self._shape(reply)
        tools = shape.array(shape.field(shape.mapping(reply.body, "the answer"), "tools"), "tools")
        levels: dict[str, str] = {}
        for item in tools:
            tool = shape.mapping(item, "a tool")
            name = shape.req_text(tool, "name")
            level = tool.get("user_access_level")
            if level is None:
                levels[name] = "None"
                continue
            levels[name] = shape.choice(
                shape.mapping(level, "user_access_level"), "name", ACCESS_LEVELS
            ) or "None"
        return levels

    # -- invoices ------------------------------------------------------------------------------

    def get_requisition(self, project_id: int, requisition_id: int) -> Requisition:
        reply = self._get(
            f"/rest/v1.1/requisitions/{requisition_id}",
            params={"project_id": project_id, "view": "extended"},  # items come only with it
        )
        requisition = self._requisition(reply, reply.body)
        if requisition.id != requisition_id:
            raise self._http.protocol_error(reply, "the answer is about another requisition")
        return requisition

    def find_requisitions(
        self,
        project_id: int,
        *,
        commitment_id: int | None = None,
        invoice_number: str | None = None,
        status: str | None = None,
    ) -> list[Requisition]:
        params: dict[str, str | int] = {"project_id": project_id, "per_page": PER_PAGE}
        if commitment_id is not None:
            params["filters[commitment_id]"] = commitment_id
        if invoice_number is not None:
            params["filters[invoice_number]"] = invoice_number
        if status is not None:
            params["filters[status]"] = status
        found: list[Requisition] = []
        seen: set[int] = set()
        for page in range(1, MAX_PAGES + 1):
            reply = self._get("/rest/v1.1/requisitions", params={**params, "page": page})
            items = self._shape(reply).array(reply.body, "the list of requisitions")
            before = len(seen)
            for item in items:
                requisition = self._requisition(reply, item)
                if requisition.id in seen:
                    continue
                seen.add(requisition.id)
                if _matches(requisition, commitment_id, invoice_number, status):
                    found.append(requisition)
            if len(seen) == before or not _has_next(reply, len(items), len(seen)):
                break
        return found

    def delete_requisition(self, project_id: int, requisition_id: int) -> None:
        self._http.check(
            self._http.request(
                "DELETE",
                f"/rest/v1.1/requisitions/{requisition_id}",
                params={"project_id": project_id},
                headers=self._company,
            ),
            procore_words,
        )

    def create_requisition(
        self, project_id: int, commitment_id: int, requisition: dict[str, Any]
    ) -> Requisition:
        body = {"project_id": project_id, "commitment_id": commitment_id,
                "requisition": requisition}
        reply = self._http.check(
            self._http.request(
                "POST", "/rest/v1.1/requisitions", json=body, headers=self._company
            ),
            procore_words,
        )
        created = self._requisition(reply, reply.body)
        if created.project_id != project_id or created.commitment_id != commitment_id:
            raise self._http.protocol_error(reply, "the new requisition is on another commitment")
        return created

    # -- commitments ---------------------------------------------------------------------------

    def get_commitment(self, project_id: int, commitment_id: int) -> Commitment:
        for kind in COMMITMENT_KINDS:
            reply = self._http.request(
                "GET", _commitment_path(kind, commitment_id), params={"project_id": project_id},
                headers=self._company,
            )
            if reply.status == 404:
                continue
            self._http.check(reply, procore_words)
            commitment = self._commitment(reply, reply.body, kind, project_id)
            if commitment.id != commitment_id:
                raise self._http.protocol_error(reply, "the answer is about another commitment")
            if commitment.project_id != project_id:
                raise self._http.protocol_error(reply, "the commitment is on another project")
            return commitment
        raise RemoteNotFound(
            f"Procore found no commitment {commitment_id} in project {project_id} (neither a"
            " work order contract nor a purchase order contract)",
            system=SYSTEM, status=404,
        )

    def update_commitment(self, commitment: Commitment, fields: dict[str, Any]) -> Commitment:
        kind = _kind(commitment.kind)
        reply = self._http.check(
            self._http.request(
                "PATCH", _commitment_path(kind, commitment.id),
                json={"project_id": commitment.project_id, kind: fields}, headers=self._company,
            ),
            procore_words,
        )
        updated = self._commitment(reply, reply.body, kind, commitment.project_id)
        if (updated.id, updated.project_id) != (commitment.id, commitment.project_id):
            raise self._http.protocol_error(reply, "the answer is about another commitment")
        return updated

    def delete_commitment(self, commitment: Commitment) -> None:
        self._http.check(
            self._http.request(
                "DELETE", _commitment_path(_kind(commitment.kind), commitment.id),
                params={"project_id": commitment.project_id}, headers=self._company,
            ),
            procore_words,
        )

    # -- helpers -------------------------------------------------------------------------------

    def sync_external_data(self, updates: list[dict[str, Any]]) -> None:
        """ERP External Data Sync: ``{"updates": [...]}``, always answered 200 with
        ``{"entities", "errors"}``, each error being the update as sent plus ``errors`` keyed by
        field; RemoteRefused naming the first one."""
        reply = self._http.check(
            self._http.request(
                "PATCH",
                f"/rest/v1.0/companies/{self.company_id}/external_data/sync",
                json={"updates": updates},
                headers=self._company,
            ),
            procore_words,
        )
        shape = self._shape(reply)
        body = shape.mapping(reply.body, "the sync answer")
        shape.array(body.get("entities", []), "entities")
        errors = shape.array(body.get("errors", []), "errors")
        if errors:
            error = shape.mapping(errors[0], "a sync error")
            what = f"{error.get('item_type')} {error.get('item_id')}"
            words = _field_errors(error.get("errors")) or procore_words(error) or "refused"
            raise RemoteRefused(
                self._http.clean(f"External Data Sync refused {what}: {words}"),
                system=SYSTEM, status=reply.status,
            )

    def _get(self, path: str, *, params: Mapping[str, str | int] | None = None) -> Reply:
        reply = self._http.request("GET", path, params=params, headers=self._company)
        return self._http.check(reply, procore_words)

    def _shape(self, reply: Reply) -> Shape:
        return Shape(lambda detail: self._http.protocol_error(reply, detail))

    def _requisition(self, reply: Reply, value: Any) -> Requisition:
        shape = self._shape(reply)
        body = shape.mapping(value, "the requisition")
        requisition = Requisition(
            id=shape.req_int(body, "id"),
            project_id=shape.req_int(body, "project_id"),
            commitment_id=shape.req_int(body, "commitment_id"),
            origin_id=shape.text(body, "origin_id", optional=True),
            fields=body,
        )
        shape.choice(body, "status", REQUISITION_STATUSES)
        shape.integer(body, "period_id", optional=True)
        for key in ("invoice_number", "erp_status", "vendor_name"):
            shape.text(body, key, optional=True)
        for key in ("billing_date", "requisition_start", "requisition_end"):
            shape.date(body, key, optional=True)
        for key in ("created_at", "updated_at"):
            shape.timestamp(body, key, optional=True)
        shape.boolean(body, "deletable", optional=True)
        shape.money(body, "total_claimed_amount", optional=True)
        number = body.get("number")
        if number is not None and (isinstance(number, bool) or not isinstance(number, int | str)):
            raise shape.fail("field 'number' should be an integer or a string")
        return requisition

    def _commitment(
        self, reply: Reply, value: Any, kind: str, project_id: int
    ) -> Commitment:
        """A work order or purchase order contract; the project comes back nested (``project``),
        ``project_id`` stands in when Procore leaves it out."""
        shape = self._shape(reply)
        body = shape.mapping(value, "the commitment")
        project = body.get("project")
        if project is not None:
            project_id = shape.req_int(shape.mapping(project, "project"), "id")
        status = shape.choice(body, "status", COMMITMENT_STATUSES[kind])
        assert status is not None
        commitment = Commitment(
            id=shape.req_int(body, "id"),
            project_id=project_id,
            kind=kind,
            number=shape.text(body, "number", optional=True),
            title=shape.text(body, "title", optional=True),
            status=status,
            origin_id=shape.text(body, "origin_id", optional=True),
            origin_code=shape.text(body, "origin_code", optional=True),
            fields=body,
        )
        for key in ("origin_data", "description", "accounting_method"):
            shape.text(body, key, optional=True)
        for key in ("executed", "private"):
            shape.boolean(body, key, optional=True)
        vendor = body.get("vendor")
        if vendor is not None:
            vendor = shape.mapping(vendor, "vendor")
            shape.integer(vendor, "id", optional=True)
            shape.text(vendor, "company", optional=True)
        for key in _COMMITMENT_MONEY:
            shape.money(body, key, optional=True)
        for key in _COMMITMENT_DATES:
            shape.date(body, key, optional=True)
        for key in ("created_at", "updated_at", "deleted_at"):
            shape.timestamp(body, key, optional=True)
        for item in shape.array(body.get("line_items") or [], "line_items"):
            shape.text(shape.mapping(item, "a line item"), "origin_id", optional=True)
        return commitment


def _kind(kind: str) -> str:
    if kind not in COMMITMENT_KINDS:
        raise ValueError(f"unknown commitment kind {kind!r}; expected one of {COMMITMENT_KINDS}")
    return kind


def _commitment_path(kind: str, commitment_id: int) -> str:
    """``/rest/v1.0/work_order_contracts/{id}`` or ``.../purchase_order_contracts/{id}`` (v1.0
    only: Procore has no later version of these resources)."""
    return f"/rest/v1.0/{kind}s/{commitment_id}"


def procore_words(body: Any) -> str | None:
    """The message of a Procore error body or sync error entry."""
    if isinstance(body, dict):
        for key in ("message", "error", "errors", "reason"):
            words = remote_words(body.get(key))
            if words:
                return words
    return remote_words(body)


def _field_errors(errors: Any) -> str | None:
    """``{"item_id": ["Entity with this ID not found"]}`` as ``item_id: Entity with ...``."""
    if not isinstance(errors, dict):
        return remote_words(errors)
    parts = [f"{field}: {remote_words(problems)}" for field, problems in errors.items()
             if remote_words(problems)]
    return "; ".join(parts) or None


def _matches(
    requisition: Requisition, commitment_id: int | None, number: str | None,
    status: str | None = None,
) -> bool:
    if commitment_id is not None and requisition.commitment_id != commitment_id:
        return False
    if status is not None and requisition.fields.get("status") != status:
        return False
    return number is None or requisition.fields.get("invoice_number") == number


def _has_next(reply: Reply, count: int, seen: int) -> bool:
    """Another page: ``Link`` rel="next", else fewer seen than ``Total``, else a full page.

    Only *whether* there is a next page is read: its URL is built from the configured API URL,
    never taken from the header, so a Link to another host gets no request (and no token)."""
    link = reply.headers.get("Link")
    if link is not None:
        return any(_NEXT_LINK.search(part) for part in link.split(","))
    total = reply.headers.get("Total", "").strip()
    if total.isdigit():
        return seen < int(total)
    return count >= PER_PAGE


def exchange_token(
    login_url: str,
    form: dict[str, str],
    *,
    policy: RetryPolicy | None = None,
    transport: httpx.BaseTransport | None = None,
) -> dict[str, Any]:
    """``POST /oauth/token``; the token answer, or RemoteRejectedCredentials (``invalid_grant``)."""
    secrets = tuple(
        value for key, value in form.items()
        if key in {"client_secret", "code", "refresh_token"} and isinstance(value, str)
    )
    with HttpClient(
        system=SYSTEM, label=LABEL, base_url=login_url, headers={"Accept": "application/json"},
        secrets=secrets, policy=policy, transport=transport,
    ) as http:
        reply = http.request("POST", "/oauth/token", data=form)
        return http.token_answer(reply, _oauth_words, numbers=("created_at",))


def _oauth_words(body: Any) -> str | None:
    return remote_words(body.get("error_description")) if isinstance(body, dict) else None
