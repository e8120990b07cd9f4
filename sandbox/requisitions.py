"""Procore's requisition (subcontractor invoice) calls: list, read, delete, create.

Rules (``spec/sandbox.md``): reading needs any Commitments access (else 404, "not visible");
``items`` come back only with ``view=extended`` (or ``view=items``). Deleting needs Commitments
Admin, or Standard for an invoice in Draft or Revise and Resubmit (403), and is refused with 422
for an invoice still synced (``origin_id`` set), one with ``deletable: false`` (payments
recorded against it) and one that is not the most recent on its commitment (the highest
``number`` among its live invoices; Procore's support page "Delete a Subcontractor Invoice").
Creating needs Standard or Admin, validates the writable fields (unknown field, wrong type,
an item without ``item_type`` or the line item it bills → 422) and, **(model)**, refuses an
``invoice_number`` already used by a live invoice of the same commitment, so that a retried
create cannot enter the same invoice twice.

Lists are ordered by id; ``per_page`` defaults to 100 and is capped at 1,000 **(model)**.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from sandbox import connector, seed
from sandbox.procore_wire import Context, level_at_least, not_found, procore_error
from sandbox.requisition_input import validate
from sandbox.state import RequisitionRecord, SandboxState, seed_item
from sandbox.wire import Response, json_response, query_int, strict_int

DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 1000
_AMOUNT_FIELDS = ("work_completed_this_period", "materials_presently_stored")


EXTENDED_VIEWS = frozenset({"extended", "items"})
LATEST_ONLY = "Only the most recent invoice on a commitment can be deleted."
DELETE_LEVELS = {"draft": "Standard", "revise_and_resubmit": "Standard"}  # else Admin


def render(record: RequisitionRecord, *, extended: bool = True) -> dict[str, Any]:
    """The requisition as Procore sends it; ``items`` only in the extended view."""
    total = sum(
        (Decimal(item[name]) for item in record.items for name in _AMOUNT_FIELDS), Decimal("0")
    )
    return {
        "id": record.id,
        "project_id": record.project_id,
        "commitment_id": record.commitment_id,
        "number": record.number,
        "invoice_number": record.invoice_number,
        "status": record.status,
        "period_id": record.period_id,
        "billing_date": record.billing_date,
        "requisition_start": record.requisition_start,
        "requisition_end": record.requisition_end,
        "origin_id": record.origin_id,
        "origin_data": record.origin_data,
        "erp_status": "synced" if record.origin_id is not None else None,
        "deletable": record.deletable,
        "vendor_name": seed.COMMITMENTS[record.commitment_id].vendor_name,
        "total_claimed_amount": f"{total:.2f}",
        "comment": record.comment,
        "final": record.final,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    } | ({"items": [dict(item) for item in record.items]} if extended else {})


def _extended(ctx: Context) -> bool:
    return ctx.request.query.get("view") in EXTENDED_VIEWS


def _project_id(query: Mapping[str, str]) -> int | Response:
    """The ``project_id`` query parameter of a seeded project, or the error answer."""
    if "project_id" not in query:
        return procore_error(400, "project_id is missing")
    project_id = query_int(query, "project_id")
    if project_id not in seed.PROJECTS:
        return not_found(f"Couldn't find Project with 'id'={query['project_id'][:40]}")
    return project_id


def _visible(ctx: Context, project_id: int) -> RequisitionRecord | None:
    record = ctx.state.live_requisition(int(ctx.params["requisition_id"]))
    if record is None or record.project_id != project_id or ctx.user.commitments == "None":
        return None
    return record


def _missing(ctx: Context) -> Response:
    return not_found(f"Couldn't find Requisition with 'id'={ctx.params['requisition_id']}")


def get_requisition(ctx: Context) -> Response:
    """``GET /rest/v1.1/requisitions/{id}?project_id=P``."""
    project_id = _project_id(ctx.request.query)
    if isinstance(project_id, Response):
        return project_id
    record = _visible(ctx, project_id)
    if record is None:
        return _missing(ctx)
    connector.auto_click(ctx.state, "requisition", record.id, record.origin_id)
    return json_response(200, render(record, extended=_extended(ctx)))


def delete_requisition(ctx: Context) -> Response:
    """``DELETE /rest/v1.1/requisitions/{id}?project_id=P``: 200, 403, 404 or 422."""
    project_id = _project_id(ctx.request.query)
    if isinstance(project_id, Response):
        return project_id
    record = _visible(ctx, project_id)
    if record is None:
        return _missing(ctx)
    needed = DELETE_LEVELS.get(record.status, "Admin")
    if not level_at_least(ctx.user.commitments, needed):
        return procore_error(403, "You do not have permission to delete this invoice.")
    if record.origin_id is not None:
        return procore_error(
            422,
            "This subcontractor invoice is synced with the ERP and cannot be deleted. "
            "Unlink it in the ERP Integrations tool first.",
        )
    if not record.deletable:
        return procore_error(
            422,
            "This subcontractor invoice cannot be deleted: payments have been recorded"
            " against it.",
        )
    later = later_invoices(ctx.state, record)
    if later:
        numbers = ", ".join(str(other.number) for other in later)
        return procore_error(422, f"{LATEST_ONLY} Later invoices on this commitment: {numbers}.")
    record.deleted = True
    record.updated_at = ctx.state.tick()
    return json_response(200, {})


def list_requisitions(ctx: Context) -> Response:
    """``GET /rest/v1.1/requisitions?project_id=P&page=N&per_page=M&filters[...]=...``."""
    query = ctx.request.query
    project_id = _project_id(query)
    if isinstance(project_id, Response):
        return project_id
    if ctx.user.commitments == "None":
        return procore_error(403, "You do not have access to the Commitments tool.")
    page = query_int(query, "page") if "page" in query else 1
    per_page = query_int(query, "per_page") if "per_page" in query else DEFAULT_PER_PAGE
    if page is None or per_page is None:
        return procore_error(400, "page and per_page must be positive integers")
    per_page = min(per_page, MAX_PER_PAGE)
    records = [
        record
        for record in sorted(ctx.state.requisitions.values(), key=lambda record: record.id)
        if not record.deleted and record.project_id == project_id and _matches(record, query)
    ]
    for record in records:
        connector.auto_click(ctx.state, "requisition", record.id, record.origin_id)
    last_page = max(1, -(-len(records) // per_page))
    shown = records[(page - 1) * per_page : page * per_page]
    headers = {
        "Total": str(len(records)),
        "Per-Page": str(per_page),
        "Link": _links(ctx, page, last_page),
    }
    extended = _extended(ctx)
    return json_response(200, [render(record, extended=extended) for record in shown], headers)


def _matches(record: RequisitionRecord, query: Mapping[str, str]) -> bool:
    checks: list[tuple[str, str | None]] = [
        ("filters[status]", record.status),
        ("filters[origin_id]", record.origin_id),
        ("filters[commitment_id]", str(record.commitment_id)),
        ("filters[invoice_number]", record.invoice_number),
        ("filters[id]", str(record.id)),
    ]
    for name, value in checks:
        if name in query and value not in query[name].split(","):
            return False
    return True


def _links(ctx: Context, page: int, last_page: int) -> str:
    request = ctx.request
    host = request.headers.get("host")
    base = f"http://{host}{request.path}" if host else request.path
    others = [(name, value) for name, value in request.query.items() if name != "page"]
    pages = [("first", 1)]
    if page > 1:
        pages.append(("prev", min(page - 1, last_page)))
    if page < last_page:
        pages.append(("next", page + 1))
    pages.append(("last", last_page))
    return ", ".join(
        f'<{base}?{urlencode([*others, ("page", str(number))])}>; rel="{rel}"'
        for rel, number in pages
    )


def create_requisition(ctx: Context) -> Response:
    """``POST /rest/v1.1/requisitions`` with ``{"project_id", "commitment_id", "requisition"}``."""
    if not level_at_least(ctx.user.commitments, "Standard"):
        return procore_error(403, "Standard or Admin access to the Commitments tool is required.")
    payload = ctx.request.json_object()
    project_id = strict_int(payload.get("project_id")) or query_int(ctx.request.query, "project_id")
    commitment_id = strict_int(payload.get("commitment_id"))
    fields = payload.get("requisition")
    for name, value in (("project_id", project_id), ("commitment_id", commitment_id)):
        if value is None:
            return procore_error(400, f"{name} is missing or is not an integer")
    if not isinstance(fields, dict):
        return procore_error(400, "requisition is missing or is not an object")
    if project_id not in seed.PROJECTS:
        return not_found(f"Couldn't find Project with 'id'={project_id}")
    commitment = seed.COMMITMENTS.get(commitment_id or 0)
    if commitment is None or commitment.project_id != project_id:
        return not_found(f"Couldn't find Commitment with 'id'={commitment_id}")
    clean, errors = validate(fields, commitment.id)
    number = clean.get("invoice_number")
    if number is not None and _invoice_number_taken(ctx.state, commitment.id, number):
        errors.setdefault("invoice_number", []).append("has already been taken")
    if errors:
        summary = "; ".join(f"{name} {', '.join(problems)}" for name, problems in errors.items())
        return procore_error(422, f"Validation failed: {summary}", fields=errors)
    record = _new_record(ctx.state, commitment, clean)
    ctx.state.requisitions[record.id] = record
    return json_response(201, render(record))


def later_invoices(state: SandboxState, record: RequisitionRecord) -> list[RequisitionRecord]:
    """The live invoices on ``record``'s commitment numbered after it."""
    return sorted(
        (
            other
            for other in state.requisitions.values()
            if not other.deleted
            and other.commitment_id == record.commitment_id
            and other.number > record.number
        ),
        key=lambda other: other.number,
    )


def _invoice_number_taken(state: SandboxState, commitment_id: int, number: str) -> bool:
    return any(
        not record.deleted
        and record.commitment_id == commitment_id
        and record.invoice_number == number
        for record in state.requisitions.values()
    )


def _new_record(
    state: SandboxState, commitment: seed.Commitment, clean: dict[str, Any]
) -> RequisitionRecord:
    numbers = [
        record.number
        for record in state.requisitions.values()
        if record.commitment_id == commitment.id and not record.deleted
    ]
    items = []
    for position, item in enumerate(clean.get("items", []), start=1):
        line = seed.LINE_ITEMS[item.get("line_item_id") or item["detail_line_item_id"]]
        written = {name: value for name, value in item.items() if name != "item_type"}
        items.append(
            seed_item(state.next_item_id, line, Decimal(0), position) | written
        )
        state.next_item_id += 1
    now = state.tick()
    record = RequisitionRecord(
        id=state.next_requisition_id,
        project_id=commitment.project_id,
        commitment_id=commitment.id,
        number=max(numbers, default=0) + 1,
        invoice_number=clean.get("invoice_number"),
        status=clean.get("status", "draft"),
        period_id=clean.get("period_id"),
        billing_date=clean.get("billing_date"),
        requisition_start=clean.get("requisition_start"),
        requisition_end=clean.get("requisition_end"),
        origin_id=None,
        origin_data=None,
        deletable=True,
        comment=clean.get("comment"),
        final=clean.get("final", False),
        items=items,
        created_at=now,
        updated_at=now,
    )
    state.next_requisition_id += 1
    return record
