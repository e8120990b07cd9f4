"""Procore's commitment calls (v1.0 only): read, update and delete a work order contract
(subcontract) or a purchase order contract, and the accounting approver's "accept" that
(re)creates the commitment's document in the ERP.

* ``GET /rest/v1.0/{kind}s/{id}?project_id=P``: any Commitments access, else 404 ("not
  visible"); 404 also for a deleted one and for the other kind.
* ``PATCH /rest/v1.0/{kind}s/{id}`` with ``{"project_id": P, "<kind>": {...}}``: Commitments
  Admin (403); fields checked by :mod:`sandbox.commitment_input` (422); while the commitment is
  synced (``origin_id`` set) a change of ``vendor_id``, ``title``, ``status`` or
  ``retainage_percent`` → 422 **(model)**.
* ``DELETE /rest/v1.0/{kind}s/{id}?project_id=P``: Commitments Admin (403); synced → 422; not
  ``Draft`` → 422 **(model: the code; Procore's rule)**; 200 with no body, a soft delete.

There is no ``erp_status`` on commitments: "synced" is ``origin_id`` alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sandbox import connector, seed
from sandbox.commitment_input import DATE_FIELDS, LOCKED_WHILE_SYNCED, validate
from sandbox.procore_wire import Context, level_at_least, not_found, procore_error
from sandbox.state import CommitmentRecord, PurchaseDocumentRecord, SandboxState
from sandbox.wire import Response, empty_response, json_response, query_int, strict_int

SYNCED_CANNOT_CHANGE = (
    "This commitment is synced with ERP and cannot be edited. Unlink it in the ERP Integrations"
    " tool first."
)
SYNCED_CANNOT_DELETE = (
    "Commitments can't be deleted while synced with ERP. Unlink it in the ERP Integrations tool"
    " first."
)
ONLY_DRAFT = "Only a commitment in Draft status can be deleted. Set its status to Draft first."


class ExportRefused(ValueError):
    """The accounting approver cannot accept this commitment; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def render(state: SandboxState, record: CommitmentRecord) -> dict[str, Any]:
    """The commitment as Procore sends it (``RestV10WorkOrderContractsPost201Response``)."""
    vendor = seed.VENDORS[record.vendor_id]
    amount = f"{record.amount:.2f}"
    vendor_origin = str(vendor.erp_ref) if state.syncs_commitments else None
    body: dict[str, Any] = {
        "id": record.id,
        "number": record.number,
        "title": record.title,
        "description": record.extra.get("description"),
        "status": record.status,
        "executed": record.extra.get("executed", False),
        "private": record.extra.get("private", False),
        "vendor": {"id": vendor.id, "company": vendor.name, "origin_id": vendor_origin,
                   "origin_data": None},
        "project": {"id": record.project_id, "name": seed.PROJECTS[record.project_id]},
        "origin_id": record.origin_id,
        "origin_data": record.origin_data,
        "origin_code": record.origin_code,
        "grand_total": amount,
        "revised_contract": amount,
        "approved_change_orders": "0.00",
        "pending_change_orders": "0.00",
        "remaining_balance_outstanding": amount,
        "total_payments": "0.00",
        "total_requisitions_amount": "0.00",
        "percentage_paid": "0.00",
        "retainage_percent": record.extra.get("retainage_percent"),
        "accounting_method": record.extra.get("accounting_method", "amount"),
        **{name: record.extra.get(name) for name in DATE_FIELDS},
        "inclusions": record.extra.get("inclusions"),
        "exclusions": record.extra.get("exclusions"),
        "line_items": [
            {
                "id": record.id * 100 + 1,
                "amount": amount,
                "description": record.title,
                "cost_code": {"id": 5100, "full_code": "05-100", "name": "Structural Steel"},
                "line_item_type": {"id": 3, "code": "S", "name": "Subcontract"},
                "quantity": "1.0",
                "unit_cost": amount,
                "uom": "LS",
                "origin_id": None,  # the link is decided by the commitment's origin_id (model)
                "origin_data": None,
            }
        ],
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "deleted_at": record.deleted_at,
    }
    if record.kind == "purchase_order_contract":
        body.update({
            "bill_to_address": None, "ship_to_address": None, "ship_via": None,
            "delivery_date": None, "payment_terms": None, "assignee": None,
        })
    return body


def _project_id(query: Mapping[str, str]) -> int | Response:
    """The ``project_id`` query parameter of a seeded project, or the error answer."""
    if "project_id" not in query:
        return procore_error(400, "project_id is missing")
    return _known_project(query_int(query, "project_id"), query["project_id"])


def _body_project_id(payload: dict[str, Any]) -> int | Response:
    """The ``project_id`` a PATCH carries in its body (not the query), or the error answer."""
    if "project_id" not in payload:
        return procore_error(400, "project_id is missing")
    return _known_project(strict_int(payload["project_id"]), payload["project_id"])


def _known_project(project_id: int | None, raw: Any) -> int | Response:
    if project_id is None or project_id <= 0:
        return procore_error(400, "project_id must be a positive integer")
    if project_id not in seed.PROJECTS:
        return not_found(f"Couldn't find Project with 'id'={str(raw)[:40]}")
    return project_id


def _visible(ctx: Context, project_id: int) -> CommitmentRecord | None:
    kind = ctx.params["kind"]
    record = ctx.state.live_commitment(int(ctx.params["commitment_id"]), kind)
    if record is None or record.project_id != project_id or ctx.user.commitments == "None":
        return None
    return record


def _missing(ctx: Context) -> Response:
    name = seed.COMMITMENT_CLASSES[ctx.params["kind"]]
    return not_found(f"Couldn't find {name} with 'id'={ctx.params['commitment_id']}")


def _not_admin(ctx: Context) -> Response | None:
    if level_at_least(ctx.user.commitments, "Admin"):
        return None
    return procore_error(403, "Admin access to the Commitments tool is required.")


def get_commitment(ctx: Context) -> Response:
    """``GET /rest/v1.0/{kind}s/{id}?project_id=P``."""
    project_id = _project_id(ctx.request.query)
    if isinstance(project_id, Response):
        return project_id
    record = _visible(ctx, project_id)
    if record is None:
        return _missing(ctx)
    connector.auto_click(ctx.state, record.kind, record.id, record.origin_id)
    return json_response(200, render(ctx.state, record))


def update_commitment(ctx: Context) -> Response:
    """``PATCH /rest/v1.0/{kind}s/{id}`` with ``{"project_id": P, "<kind>": {...}}``."""
    kind = ctx.params["kind"]
    payload = ctx.request.json_object()
    project_id = _body_project_id(payload)
    if isinstance(project_id, Response):
        return project_id
    fields = payload.get(kind)
    if not isinstance(fields, dict):
        return procore_error(400, f"{kind} is missing or is not an object")
    record = _visible(ctx, project_id)
    if record is None:
        return _missing(ctx)
    refusal = _not_admin(ctx)
    if refusal is not None:
        return refusal
    clean, errors = validate(kind, fields)
    if errors:
        summary = "; ".join(f"{name} {', '.join(problems)}" for name, problems in errors.items())
        return procore_error(422, f"Validation failed: {summary}", fields=errors)
    locked = [name for name in LOCKED_WHILE_SYNCED
              if name in clean and clean[name] != _current(record, name)]
    if record.origin_id is not None and locked:
        return procore_error(422, SYNCED_CANNOT_CHANGE,
                             fields={name: ["is locked while synced with ERP"] for name in locked})
    _apply(record, clean)
    record.updated_at = ctx.state.tick()
    return json_response(200, render(ctx.state, record))


# fields kept on the record itself; the others live in ``record.extra``
_RECORD_FIELDS = frozenset({"title", "status", "vendor_id", "number", "origin_id", "origin_data",
                            "origin_code"})


def _current(record: CommitmentRecord, name: str) -> Any:
    return getattr(record, name) if name in _RECORD_FIELDS else record.extra.get(name)


def _apply(record: CommitmentRecord, clean: dict[str, Any]) -> None:
    for name, value in clean.items():
        if name in _RECORD_FIELDS:
            setattr(record, name, value)
        else:
            record.extra[name] = value


def delete_commitment(ctx: Context) -> Response:
    """``DELETE /rest/v1.0/{kind}s/{id}?project_id=P``: 200, 403, 404 or 422."""
    project_id = _project_id(ctx.request.query)
    if isinstance(project_id, Response):
        return project_id
    record = _visible(ctx, project_id)
    if record is None:
        return _missing(ctx)
    refusal = _not_admin(ctx)
    if refusal is not None:
        return refusal
    if record.origin_id is not None:
        return procore_error(422, SYNCED_CANNOT_DELETE)
    if record.status != "Draft":
        return procore_error(422, ONLY_DRAFT)
    record.deleted_at = record.updated_at = ctx.state.tick()
    return empty_response(200)


# --- the accounting approver (no public API: a control endpoint) ---------------------------------


def accept_export(state: SandboxState, commitment_id: int) -> CommitmentRecord:
    """The accounting approver accepts a commitment sent to the ERP: Procore's connector creates
    a new document in the ERP and writes ``origin_id`` / ``origin_code`` back. Raises
    :class:`ExportRefused` when there is nothing the approver could accept **(model)**."""
    record = state.live_commitment(commitment_id)
    if record is None:
        raise ExportRefused(404, f"no commitment {commitment_id} in Procore")
    if not state.syncs_commitments:
        product = seed.PRODUCT_NAMES[state.erp]
        raise ExportRefused(422, f"{product}'s Procore connector does not sync commitments")
    if record.origin_id is not None:
        raise ExportRefused(409, f"commitment {commitment_id} is already synced with the ERP")
    if record.status != "Approved":
        raise ExportRefused(
            422, f"commitment {commitment_id} is {record.status}: only an Approved commitment"
            " can be sent to the ERP"
        )
    state.export_commitment(record)
    return record


def commitment_state(state: SandboxState, record: CommitmentRecord) -> dict[str, Any]:
    """The commitment and its ERP document, product-neutral (for the control endpoints)."""
    document = state.find_purchase_document(record.origin_id) if record.origin_id else None
    return {
        "id": record.id,
        "project_id": record.project_id,
        "kind": record.kind,
        "number": record.number,
        "title": record.title,
        "status": record.status,
        "origin_id": record.origin_id,
        "origin_code": record.origin_code,
        "deleted": record.deleted,
        "document": document_state(state, document) if document is not None else None,
    }


def document_state(state: SandboxState, document: PurchaseDocumentRecord) -> dict[str, Any]:
    return {
        "id": state.purchase_document_id(document),
        "serial": document.serial,
        "commitment_id": document.commitment_id,
        "number": document.number,
        "amount": f"{document.amount:.2f}",
        "state": document.state,
        "exists": not document.gone,
        "updated_at": document.updated_at,
    }

