"""`subcontractor-invoice`: Procore's procedure for correcting an invoice exported to the ERP.

Exported -> DeletedInERP -> Unlinked -> DeletedInProcore -> Reentered (or Exported -> Cancelled).
Every action reads before it writes, so running it again after a crash changes nothing twice.
"""

from __future__ import annotations

import enum
from typing import Any

from integrations.errors import RemoteNotFound
from integrations.models import Requisition
from workflows.definition import (
    Opening,
    Requirement,
    Step,
    StepContext,
    StepResult,
    WorkflowDefinition,
)
from workflows.errors import Rejected
from workflows.registry import register
from workflows.requisition import corrected_requisition, matches


class State(enum.StrEnum):
    EXPORTED = "Exported"
    DELETED_IN_ERP = "DeletedInERP"
    UNLINKED = "Unlinked"
    DELETED_IN_PROCORE = "DeletedInProcore"
    REENTERED = "Reentered"
    CANCELLED = "Cancelled"


ADMIN = frozenset({"Admin"})
STANDARD_OR_ADMIN = frozenset({"Standard", "Admin"})
ERP_STEP = Requirement(ADMIN, STANDARD_OR_ADMIN, can_push_to_accounting=True)

STILL_IN_ERP = "The requisition is still in {erp}. Please delete it before retrying."
UNLINKED = "Successfully Unlinked"


def _bill_id(ctx: StepContext) -> str:
    if not ctx.erp_bill_id:
        raise Rejected("This invoice has no ERP bill id to act on.")
    return ctx.erp_bill_id


def _bill_gone(ctx: StepContext) -> bool:
    bill = ctx.erp.get_bill(_bill_id(ctx))
    if bill is not None:
        ctx.evidence["erp_bill"] = {"id": bill.id, "status": bill.status}
        return False
    ctx.evidence["erp_bill"] = {"id": ctx.erp_bill_id, "status": "gone"}
    return True


# delete-in-erp -------------------------------------------------------------------------------


def probe_erp_deletion(ctx: StepContext) -> StepResult | None:
    if _bill_gone(ctx):
        return StepResult(f"Bill {ctx.erp_bill_id} is deleted in {ctx.erp.product_name}.")
    return None


def delete_in_erp(ctx: StepContext) -> StepResult:
    if (done := probe_erp_deletion(ctx)) is not None:
        return done
    ctx.erp.delete_bill(_bill_id(ctx), idempotency_key=ctx.idempotency_key)
    if not _bill_gone(ctx):
        raise Rejected(
            f"{ctx.erp.product_name} still shows bill {ctx.erp_bill_id} after the delete."
        )
    return StepResult(f"Deleted bill {ctx.erp_bill_id} in {ctx.erp.product_name}.")


def confirm_erp_deletion(ctx: StepContext) -> StepResult:
    if _bill_gone(ctx):
        return StepResult(
            f"Confirmed: bill {ctx.erp_bill_id} is no longer in {ctx.erp.product_name}."
        )
    raise Rejected(
        f"Bill {ctx.erp_bill_id} still exists in {ctx.erp.product_name}"
        f" (status {ctx.evidence['erp_bill']['status']}); delete it there, or run delete-in-erp."
    )


# unlink --------------------------------------------------------------------------------------


def _still_in_erp(ctx: StepContext) -> str | None:
    return None if _bill_gone(ctx) else STILL_IN_ERP.format(erp=ctx.erp.product_name)


def _requisition(ctx: StepContext) -> Requisition | None:
    try:
        return ctx.procore.get_requisition(ctx.project_id, ctx.invoice_id)
    except RemoteNotFound:
        return None


def probe_unlink(ctx: StepContext) -> StepResult | None:
    requisition = _requisition(ctx)
    if requisition is None:
        raise Rejected(f"Invoice {ctx.invoice_id} is no longer in Procore.")
    ctx.evidence["origin_id"] = requisition.origin_id
    return StepResult(UNLINKED) if requisition.origin_id is None else None


def unlink(ctx: StepContext) -> StepResult:
    if (message := _still_in_erp(ctx)) is not None:
        raise Rejected(message, style="error")
    if (done := probe_unlink(ctx)) is not None:
        return done
    ctx.procore.unlink_requisition(ctx.invoice_id)
    return StepResult(UNLINKED)


# delete-in-procore ---------------------------------------------------------------------------


def probe_procore_deletion(ctx: StepContext) -> StepResult | None:
    if _requisition(ctx) is None:
        return StepResult(f"Deleted invoice {ctx.invoice_id} in Procore.")
    return None


def delete_in_procore(ctx: StepContext) -> StepResult:
    if (done := probe_procore_deletion(ctx)) is not None:
        return done
    ctx.procore.delete_requisition(ctx.project_id, ctx.invoice_id)
    return StepResult(f"Deleted invoice {ctx.invoice_id} in Procore.")


# reenter -------------------------------------------------------------------------------------


def _reentered(ctx: StepContext, requisition: Requisition) -> StepResult:
    after = requisition.fields
    return StepResult(
        f"Re-entered invoice {ctx.invoice_id} as {requisition.id} ({after.get('invoice_number')}).",
        changes={"new_invoice_id": requisition.id, "after": after},
    )


def probe_reentry(ctx: StepContext) -> StepResult | None:
    body = corrected_requisition(ctx.snapshot, ctx.data or {})
    found = ctx.procore.find_requisitions(
        ctx.project_id,
        commitment_id=int(ctx.snapshot["commitment_id"]),
        invoice_number=body.get("invoice_number"),
    )
    for requisition in found:
        if requisition.id != ctx.invoice_id and matches(requisition.fields, body):
            return _reentered(ctx, requisition)
    return None


def reenter(ctx: StepContext) -> StepResult:
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
        action=delete_in_erp, probe=probe_erp_deletion,
        summary="Delete (or void) the linked bill in the ERP, then read it back.",
    ),
    Step(
        "confirm-erp-deletion", (E,), D, ERP_STEP,
        action=confirm_erp_deletion,
        summary="Confirm a bill deleted by hand in the ERP is gone.",
    ),
    Step(
        "unlink", (D,), U, ERP_STEP,
        action=unlink, probe=probe_unlink, out_of_order=_still_in_erp,
        summary="Check the ERP once more, then clear the invoice's ERP link in Procore.",
    ),
    Step(
        "delete-in-procore", (U,), P, Requirement(ADMIN),
        action=delete_in_procore, probe=probe_procore_deletion,
        summary="Delete the invoice in Procore.",
    ),
    Step(
        "reenter", (P,), R, Requirement(STANDARD_OR_ADMIN),
        action=reenter, probe=probe_reentry, needs_data=True,
        summary="Create the corrected invoice in Procore from a data file.",
    ),
    Step(
        "cancel", (E,), C, Requirement(ADMIN),
        summary="Abandon the correction before anything was changed anywhere.",
    ),
)  # fmt: skip

DEFINITION = register(
    WorkflowDefinition(
        name="subcontractor-invoice",
        version=1,
        states=State,
        initial=E,
        finals=frozenset({R, C}),
        steps=STEPS,
        opening=Opening(
            Requirement(ADMIN),
            summary="Read the invoice from Procore and keep a snapshot of it.",
        ),
        description="Correct a subcontractor invoice exported to the ERP with wrong data.",
    )
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
