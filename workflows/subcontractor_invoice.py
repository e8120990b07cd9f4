"""`subcontractor-invoice`: Procore's procedure for correcting an invoice exported to the ERP.

Exported -> DeletedInERP -> Unlinked -> DeletedInProcore -> Reentered (or Exported -> Cancelled).
Every action reads before it writes, so running it again after a crash changes nothing twice.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol

from integrations.errors import RemoteNotFound
from integrations.models import Bill, Requisition
from workflows.definition import (
    Opened,
    Opening,
    OpeningContext,
    Requirement,
    Step,
    StepContext,
    StepResult,
    Subject,
    WorkflowDefinition,
)
from workflows.erp_steps import ADMIN, ERP_STEP, STANDARD_OR_ADMIN, UNLINKED, ErpTransaction
from workflows.errors import Rejected
from workflows.invoice_search import FILTERS, blocking_invoices, find_invoices, later_invoices
from workflows.requisition import (
    NotReenterable,
    corrected_requisition,
    matches,
    preview_reentry,
    validate_correction,
)
from workflows.unlinking import clear_link, link_of


class InvoiceProcore(Protocol):
    """What this workflow calls in Procore (integrations.procore implements it)."""

    def get_requisition(self, project_id: int, requisition_id: int) -> Requisition: ...

    def find_requisitions(
        self, project_id: int, *, commitment_id: int | None = None,
        invoice_number: str | None = None, status: str | None = None,
    ) -> list[Requisition]: ...

    def delete_requisition(self, project_id: int, requisition_id: int) -> None: ...

    def create_requisition(
        self, project_id: int, commitment_id: int, requisition: dict[str, Any]
    ) -> Requisition: ...


class BillERP(Protocol):
    """What this workflow calls in the ERP: its bills (integrations.erp implements it)."""

    product_name: str

    def get_bill(self, bill_id: str) -> Bill | None: ...

    def delete_bill(self, bill_id: str, *, idempotency_key: str) -> None: ...


Ctx = StepContext[InvoiceProcore, BillERP]


class State(enum.StrEnum):
    EXPORTED = "Exported"
    DELETED_IN_ERP = "DeletedInERP"
    UNLINKED = "Unlinked"
    DELETED_IN_PROCORE = "DeletedInProcore"
    REENTERED = "Reentered"
    CANCELLED = "Cancelled"
    ABANDONED = "Abandoned"  # version 2


class StateV1(enum.StrEnum):
    """The states of version 1 (before `abandon`)."""

    EXPORTED = "Exported"
    DELETED_IN_ERP = "DeletedInERP"
    UNLINKED = "Unlinked"
    DELETED_IN_PROCORE = "DeletedInProcore"
    REENTERED = "Reentered"
    CANCELLED = "Cancelled"


STILL_IN_ERP = "The requisition is still in {erp}. Please delete it before retrying."


def _invoice_id(ctx: Ctx) -> int:
    return int(ctx.subject_id)


BILL = ErpTransaction(
    noun="bill", ref_key="erp_bill_id", evidence_key="erp_bill",
    missing="This invoice has no ERP bill id to act on.",
    read=lambda erp, bill_id: erp.get_bill(bill_id),
    delete=lambda erp, bill_id, key: erp.delete_bill(bill_id, idempotency_key=key),
    still_there=STILL_IN_ERP,
)


# unlink --------------------------------------------------------------------------------------


def _requisition(ctx: Ctx) -> Requisition | None:
    try:
        return ctx.procore.get_requisition(ctx.project_id, _invoice_id(ctx))
    except RemoteNotFound:
        return None


def probe_unlink(ctx: Ctx) -> StepResult | None:
    requisition = _requisition(ctx)
    if requisition is None:
        raise Rejected(f"Invoice {_invoice_id(ctx)} is no longer in Procore.")
    ctx.evidence["origin_id"] = requisition.origin_id
    return StepResult(UNLINKED) if requisition.origin_id is None else None


CLICK_WHERE = (
    "In Procore, open ERP Integrations › Subcontractor Invoices › Synced with ERP, find invoice"
    " {number} (id {id}) and click Unlink"
)
ITEM_LINKS = {
    "contract_item": "requisition_contract_item",
    "contract_detail_item": "requisition_contract_detail_item",
    "change_order_item": "requisition_change_order_item",
}


def unlink(ctx: Ctx) -> StepResult:
    """Check the ERP (the red message while the bill is there), then have the link cleared:
    by the operator's click in Procore, or (integrator mode) through External Data Sync."""
    if (message := BILL.still_in_erp(ctx)) is not None:
        raise Rejected(message, alert=True)
    requisition = _requisition(ctx)
    if requisition is None:
        raise Rejected(f"Invoice {_invoice_id(ctx)} is no longer in Procore.")
    clear_link(
        ctx, requisition, lambda: _requisition(ctx), lambda: _link_updates(requisition),
        where=CLICK_WHERE.format(number=requisition.fields.get("invoice_number"),
                                 id=requisition.id),
        what=f"invoice {requisition.id}",
    )
    return StepResult(UNLINKED)


def _link_updates(requisition: Requisition) -> list[dict[str, Any]]:
    """External Data Sync updates clearing the invoice's link and its items'."""
    updates: list[dict[str, Any]] = [
        {"item_type": "requisition", "item_id": requisition.id, "origin_id": None,
         "origin_data": None}
    ]
    for item in requisition.fields.get("items") or []:
        kind = ITEM_LINKS.get(str(item.get("item_type"))) if isinstance(item, dict) else None
        if kind is not None and isinstance(item.get("id"), int):
            updates.append({"item_type": kind, "item_id": item["id"], "origin_id": None})
    return updates


# delete-in-procore ---------------------------------------------------------------------------


def probe_procore_deletion(ctx: Ctx) -> StepResult | None:
    if _requisition(ctx) is None:
        return StepResult(f"Deleted invoice {_invoice_id(ctx)} in Procore.")
    return None


def delete_in_procore(ctx: Ctx) -> StepResult:
    if (done := probe_procore_deletion(ctx)) is not None:
        return done
    ctx.procore.delete_requisition(ctx.project_id, _invoice_id(ctx))
    return StepResult(f"Deleted invoice {_invoice_id(ctx)} in Procore.")


# reenter -------------------------------------------------------------------------------------


def _reentered(ctx: Ctx, requisition: Requisition) -> StepResult:
    after = requisition.fields
    return StepResult(
        f"Re-entered invoice {_invoice_id(ctx)} as {requisition.id}"
        f" ({after.get('invoice_number')}).",
        changes={"new_invoice_id": requisition.id, "after": after},
    )


def _body(ctx: Ctx) -> dict[str, Any]:
    try:
        return corrected_requisition(ctx.snapshot, ctx.data or {})
    except NotReenterable as exc:
        raise Rejected(f"Refused: {exc}.") from None


def probe_reentry(ctx: Ctx) -> StepResult | None:
    body = _body(ctx)
    found = ctx.procore.find_requisitions(
        ctx.project_id,
        commitment_id=int(ctx.snapshot["commitment_id"]),
        invoice_number=body.get("invoice_number"),
    )
    for requisition in found:
        if requisition.id != _invoice_id(ctx) and matches(requisition.fields, body):
            return _reentered(ctx, requisition)
    return None


def reenter(ctx: Ctx) -> StepResult:
    if (done := probe_reentry(ctx)) is not None:
        return done
    body = _body(ctx)
    created = ctx.procore.create_requisition(
        ctx.project_id, int(ctx.snapshot["commitment_id"]), body
    )
    return _reentered(ctx, created)


# the definition ------------------------------------------------------------------------------

E, D, U, P, R, C, A = (
    State.EXPORTED,
    State.DELETED_IN_ERP,
    State.UNLINKED,
    State.DELETED_IN_PROCORE,
    State.REENTERED,
    State.CANCELLED,
    State.ABANDONED,
)

STEPS_V1: tuple[Step, ...] = (
    Step(
        "delete-in-erp", (E,), D, ERP_STEP,
        action=BILL.delete_in_erp, probe=BILL.probe_deletion,
        summary="Delete (or void) the linked bill in the ERP, then read it back.",
    ),
    Step(
        "confirm-erp-deletion", (E,), D, ERP_STEP,
        action=BILL.confirm_deletion,
        summary="Confirm a bill deleted by hand in the ERP is gone.",
    ),
    Step(
        "unlink", (D,), U, ERP_STEP,
        action=unlink, probe=probe_unlink, out_of_order=BILL.still_in_erp,
        summary="Check the ERP once more, then have the invoice's ERP link cleared in Procore"
        " (the operator's Unlink click, or External Data Sync in integrator mode).",
    ),
    Step(
        "delete-in-procore", (U,), P, Requirement.of(commitments=ADMIN),
        action=delete_in_procore, probe=probe_procore_deletion,
        summary="Delete the invoice in Procore.",
    ),
    Step(
        "reenter", (P,), R, Requirement.of(commitments=STANDARD_OR_ADMIN),
        action=reenter, probe=probe_reentry, needs_data=True, preview=preview_reentry,
        summary="Create the corrected invoice in Procore from a data file.",
    ),
    Step(
        "cancel", (E,), C, Requirement.of(commitments=ADMIN),
        summary="Abandon the correction before anything was changed anywhere.",
    ),
)  # fmt: skip


def abandon(ctx: Ctx) -> StepResult:
    """Give up where the correction stands: read, never write, and record what Procore and the
    ERP hold now."""
    requisition = _requisition(ctx)
    bill_id = ctx.remote_ref.get("erp_bill_id")
    bill = ctx.erp.get_bill(str(bill_id)) if bill_id else None
    ctx.evidence["remote_state"] = {
        "invoice": None if requisition is None else link_of(requisition.fields),
        "invoice_in_procore": requisition is not None,
        "erp_bill_id": bill_id,
        "bill_in_erp": bill is not None,
    }
    where = "still in Procore" if requisition is not None else "no longer in Procore"
    erp = f"its bill {'still' if bill is not None else 'no longer'} in {ctx.erp.product_name}"
    return StepResult(
        f"Abandoned the correction of invoice {_invoice_id(ctx)}: the invoice is {where},"
        f" {erp}. Finish it by hand in Procore and the ERP."
    )


STEPS: tuple[Step, ...] = (
    *STEPS_V1,
    Step(
        "abandon", (E, D, U, P), A, Requirement.of(commitments=ADMIN),
        action=abandon, way_out=True,
        summary="Give up the correction where it stands (a refusal it cannot get past),"
        " recording Procore's and the ERP's state as they are; nothing is written.",
    ),
)

# opening --------------------------------------------------------------------------------------


def open_invoice(ctx: OpeningContext[InvoiceProcore, BillERP]) -> Opened:
    """Read the invoice; it must be synced with the ERP (else there is nothing to correct)."""
    invoice_id = int(ctx.subject_id)
    try:
        requisition = ctx.procore.get_requisition(ctx.project_id, invoice_id)
    except RemoteNotFound:
        raise Rejected(
            f"Refused: invoice {invoice_id} was not found in project {ctx.project_id}"
            " (or you may not see it)."
        ) from None
    if (why := opening_refusal(requisition)) is not None:
        raise Rejected(f"Refused: {why}")
    if later := later_invoices(ctx.procore, requisition):
        named = ", ".join(f"{other.id} ({other.fields.get('invoice_number')})" for other in later)
        raise Rejected(
            f"Refused: Procore deletes only the most recent invoice on a commitment, and"
            f" commitment {requisition.commitment_id} has later invoices: {named}. Correct"
            f" them first, newest first (`relink start {invoice_id} --cascade` plans it)."
        )
    snapshot = snapshot_of(requisition)
    return Opened(
        snapshot=snapshot,
        remote_ref={"erp_bill_id": requisition.origin_id},
        label=f"invoice {invoice_id} ({snapshot.get('invoice_number')})",
    )


def invoice_fields(
    subject_id: str, remote_ref: Mapping[str, Any], results: Mapping[str, Any]
) -> dict[str, Any]:
    """The fields spec/cli.md's JSON shows for an invoice correction."""
    return {
        "invoice_id": int(subject_id),
        "erp_bill_id": remote_ref.get("erp_bill_id"),
        "new_invoice_id": results.get("new_invoice_id"),
    }


def audit_fields(subject_id: str, remote_ref: Mapping[str, Any]) -> dict[str, Any]:
    return {"invoice_id": int(subject_id), "erp_bill_id": remote_ref.get("erp_bill_id")}


DEFINITION_V1 = WorkflowDefinition(
    name="subcontractor-invoice",
    version=1,
    states=StateV1,
    initial=E,
    finals=frozenset({R, C}),
    steps=STEPS_V1,
    opening=Opening(
        Requirement.of(commitments=ADMIN),
        summary="Read the invoice from Procore and keep a snapshot of it.",
    ),
    subject=Subject(
        type="requisition", noun="invoice", open=open_invoice,
        fields=invoice_fields, audit_fields=audit_fields,
        find=find_invoices, filters=FILTERS, blocking=blocking_invoices,
    ),
    description="Correct a subcontractor invoice exported to the ERP with wrong data.",
    data=validate_correction,
)
# Version 2 adds the way out, `abandon`, and its final state; corrections started under
# version 1 run under it from their next step on.
DEFINITION = replace(
    DEFINITION_V1, version=2, states=State, finals=frozenset({R, C, A}), steps=STEPS,
    supersedes=frozenset({1}),
)
DEFINITIONS = (DEFINITION_V1, DEFINITION)


def opening_refusal(requisition: Requisition) -> str | None:
    """Why a correction cannot start for this invoice, or None."""
    if not requisition.origin_id:
        return (
            f"Invoice {requisition.id} is not synced with the ERP (no origin_id);"
            " there is nothing to correct."
        )
    return None


def snapshot_of(requisition: Requisition) -> dict[str, Any]:
    return dict(requisition.fields)

