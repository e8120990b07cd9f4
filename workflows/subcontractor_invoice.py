"""`subcontractor-invoice`: Procore's procedure for correcting an invoice exported to the ERP.

Exported -> DeletedInERP -> Unlinked -> DeletedInProcore -> Reentered (or Exported -> Cancelled).
Every action reads before it writes, so running it again after a crash changes nothing twice.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
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
from workflows.requisition import corrected_requisition, matches, validate_correction


class InvoiceProcore(Protocol):
    """What this workflow calls in Procore (integrations.procore implements it)."""

    def get_requisition(self, project_id: int, requisition_id: int) -> Requisition: ...

    def find_requisitions(
        self, project_id: int, *, commitment_id: int | None = None,
        invoice_number: str | None = None,
    ) -> list[Requisition]: ...

    def unlink_requisition(self, requisition_id: int) -> None: ...

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


def unlink(ctx: Ctx) -> StepResult:
    if (message := BILL.still_in_erp(ctx)) is not None:
        raise Rejected(message, alert=True)
    if (done := probe_unlink(ctx)) is not None:
        return done
    ctx.procore.unlink_requisition(_invoice_id(ctx))
    return StepResult(UNLINKED)


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


def probe_reentry(ctx: Ctx) -> StepResult | None:
    body = corrected_requisition(ctx.snapshot, ctx.data or {})
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
    body = corrected_requisition(ctx.snapshot, ctx.data or {})
    created = ctx.procore.create_requisition(
        ctx.project_id, int(ctx.snapshot["commitment_id"]), body
    )
    return _reentered(ctx, created)


# the definition ------------------------------------------------------------------------------

E, D, U, P, R, C = (
    State.EXPORTED,
    State.DELETED_IN_ERP,
    State.UNLINKED,
    State.DELETED_IN_PROCORE,
    State.REENTERED,
    State.CANCELLED,
)

STEPS: tuple[Step, ...] = (
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
        summary="Check the ERP once more, then clear the invoice's ERP link in Procore.",
    ),
    Step(
        "delete-in-procore", (U,), P, Requirement.of(commitments=ADMIN),
        action=delete_in_procore, probe=probe_procore_deletion,
        summary="Delete the invoice in Procore.",
    ),
    Step(
        "reenter", (P,), R, Requirement.of(commitments=STANDARD_OR_ADMIN),
        action=reenter, probe=probe_reentry, needs_data=True,
        summary="Create the corrected invoice in Procore from a data file.",
    ),
    Step(
        "cancel", (E,), C, Requirement.of(commitments=ADMIN),
        summary="Abandon the correction before anything was changed anywhere.",
    ),
)  # fmt: skip

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


DEFINITION = WorkflowDefinition(
    name="subcontractor-invoice",
    version=1,
    states=State,
    initial=E,
    finals=frozenset({R, C}),
    steps=STEPS,
    opening=Opening(
        Requirement.of(commitments=ADMIN),
        summary="Read the invoice from Procore and keep a snapshot of it.",
    ),
    subject=Subject(
        type="requisition", noun="invoice", open=open_invoice,
        fields=invoice_fields, audit_fields=audit_fields,
    ),
    description="Correct a subcontractor invoice exported to the ERP with wrong data.",
    data=validate_correction,
)


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
