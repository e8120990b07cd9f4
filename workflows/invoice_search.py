"""Finding subcontractor invoices in Procore for operators working at scale: by number, by
commitment, synced or not, by status and billing date; and the later invoices of a commitment
that stand in the way of correcting an earlier one (Procore deletes only the most recent)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from integrations.errors import RemoteNotFound
from integrations.models import Requisition
from workflows.definition import Found, OpeningContext
from workflows.errors import Rejected


class InvoiceLister(Protocol):
    """What finding invoices calls in Procore (integrations.procore implements it)."""

    def get_requisition(self, project_id: int, requisition_id: int) -> Requisition: ...

    def find_requisitions(
        self, project_id: int, *, commitment_id: int | None = None,
        invoice_number: str | None = None, status: str | None = None,
    ) -> list[Requisition]: ...


# the filters of `relink invoices` and of a batch given as a query: the invoice number, the
# commitment, whether it is synced with the ERP, its status, billed on or after a date
FILTERS = ("number", "commitment", "synced", "status", "since")
LISTED = (
    "number", "invoice_number", "commitment_id", "status", "billing_date", "origin_id",
    "erp_status", "vendor_name", "total_claimed_amount",
)


def found(requisition: Requisition) -> Found:
    """An invoice as a listing shows it: its ERP link is ``origin_id``."""
    number = requisition.fields.get("invoice_number")
    linked = requisition.origin_id is not None
    status = requisition.fields.get("status")
    return Found(
        id=str(requisition.id),
        project_id=requisition.project_id,
        number=number if isinstance(number, str) else None,
        linked=linked,
        fields={"invoice_id": requisition.id}
        | {key: requisition.fields.get(key) for key in LISTED},
        summary=f"{number}, commitment {requisition.commitment_id}, {status},"
        f" {'synced' if linked else 'not synced'}",
    )


def find_invoices(
    ctx: OpeningContext[InvoiceLister, Any], filters: Mapping[str, Any]
) -> list[Found]:
    """The project's invoices matching ``filters`` (every page of Procore's list): number,
    commitment and status are Procore's own filters; ``synced`` (True: with an ERP link, False:
    without) and ``since`` (billed on or after a YYYY-MM-DD date) are applied to what it lists."""
    commitment = filters.get("commitment")
    listed = ctx.procore.find_requisitions(
        ctx.project_id,
        commitment_id=int(commitment) if commitment is not None else None,
        invoice_number=filters.get("number"),
        status=filters.get("status"),
    )
    synced, since = filters.get("synced"), filters.get("since")
    return [
        found(requisition) for requisition in listed
        if (synced is None or (requisition.origin_id is not None) == synced)
        and (since is None or str(requisition.fields.get("billing_date") or "") >= str(since))
    ]


def blocking_invoices(ctx: OpeningContext[InvoiceLister, Any]) -> tuple[Found, list[Found]]:
    """Invoice ``ctx.subject_id`` and the later invoices on its commitment, newest first: they
    are unwound before it and re-entered, as they were, after it."""
    try:
        requisition = ctx.procore.get_requisition(ctx.project_id, int(ctx.subject_id))
    except RemoteNotFound:
        raise Rejected(
            f"Refused: invoice {ctx.subject_id} was not found in project {ctx.project_id}"
            " (or you may not see it)."
        ) from None
    return found(requisition), [found(later) for later in later_invoices(ctx.procore, requisition)]


def later_invoices(procore: InvoiceLister, requisition: Requisition) -> list[Requisition]:
    """The invoices on the same commitment numbered after this one, newest first (Procore
    lets only the most recent invoice on a commitment be deleted)."""
    mine = _position(requisition)
    if mine is None:
        return []
    others = procore.find_requisitions(
        requisition.project_id, commitment_id=requisition.commitment_id
    )
    later = [
        other for other in others
        if other.id != requisition.id and (_position(other) or 0) > mine
    ]
    return sorted(later, key=lambda other: _position(other) or 0, reverse=True)


def _position(requisition: Requisition) -> int | None:
    number = requisition.fields.get("number")
    if isinstance(number, str) and number.strip().isdigit():
        return int(number)
    return number if isinstance(number, int) and not isinstance(number, bool) else None
