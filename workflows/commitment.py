"""`commitment`: Procore's procedure "Unlink Commitments Synced with ERP".

Synced -> DeletedInERP -> Unlinked, then one of two ways out: correct the commitment (PATCH the
corrected fields) and have it sent to the ERP again for the accounting approver
(Corrected -> Resynced), or set it to Draft and delete it (Deleted). Synced -> Cancelled abandons
the correction before anything changed.

Procore has no public API for "Send to ERP": after `correct`, the operator sends the commitment
from Procore's ERP Integrations tool, and `confirm-resync` reads it back once the accounting
approver has accepted it (its ERP link is set again). Every action reads before it writes, so
running it again after a crash changes nothing twice.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from integrations.errors import RemoteNotFound
from integrations.models import Commitment, PurchaseDocument
from workflows.definition import (
    Opened,
    Opening,
    OpeningContext,
    Previewed,
    Requirement,
    Step,
    StepContext,
    StepResult,
    Subject,
    WorkflowDefinition,
)
from workflows.erp_steps import ADMIN, ERP_STEP, STANDARD_OR_ADMIN, UNLINKED, ErpTransaction
from workflows.errors import Rejected
from workflows.unlinking import clear_link


class CommitmentProcore(Protocol):
    """What this workflow calls in Procore (integrations.procore implements it)."""

    def get_commitment(self, project_id: int, commitment_id: int) -> Commitment: ...

    def update_commitment(
        self, commitment: Commitment, fields: dict[str, Any]
    ) -> Commitment: ...

    def delete_commitment(self, commitment: Commitment) -> None: ...


class PurchaseERP(Protocol):
    """What this workflow calls in the ERP: the transaction a commitment synced to."""

    product_name: str
    syncs_commitments: bool

    def get_purchase_document(self, document_id: str) -> PurchaseDocument | None: ...

    def delete_purchase_document(self, document_id: str, *, idempotency_key: str) -> None: ...


Ctx = StepContext[CommitmentProcore, PurchaseERP]
Opening_ = OpeningContext[CommitmentProcore, PurchaseERP]


class State(enum.StrEnum):
    SYNCED = "Synced"
    DELETED_IN_ERP = "DeletedInERP"
    UNLINKED = "Unlinked"
    CORRECTED = "Corrected"
    RESYNCED = "Resynced"
    DELETED = "Deleted"
    CANCELLED = "Cancelled"


STILL_IN_ERP = "The commitment is still in {erp}. Please delete it before retrying."


# the corrected fields (--data) -----------------------------------------------------------------


class CorrectedCommitment(BaseModel):
    """The fields `correct` may change (Procore's writable commitment fields relink sends; the
    status and the ERP link are the procedure's to change, not the data file's)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    number: str | None = Field(default=None, min_length=1, max_length=255)
    title: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=10_000)
    inclusions: str | None = Field(default=None, max_length=10_000)
    exclusions: str | None = Field(default=None, max_length=10_000)
    executed: bool | None = None
    vendor_id: int | None = Field(default=None, ge=1, le=2**63 - 1)


def corrected_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Validate a data file; return the fields it sets, or raise ValueError naming the field."""
    if not isinstance(data, dict):
        raise ValueError("the data file must hold a table/object of commitment fields")
    try:
        model = CorrectedCommitment.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "the data file"
        raise ValueError(f"{where}: {error['msg']}") from None
    fields = model.model_dump(exclude_unset=True)
    if not fields:
        raise ValueError("the data file corrects no field")
    return fields


# reading -----------------------------------------------------------------------------------------


def preview_correction(snapshot: dict[str, Any], data: dict[str, Any]) -> Previewed:
    """The corrected fields as they stand in the snapshot, and as the data file sets them."""
    before = {key: snapshot.get(key) for key in data}
    if "vendor_id" in data and isinstance(snapshot.get("vendor"), dict):
        before["vendor_id"] = snapshot["vendor"].get("id")
    return Previewed(before, dict(data))


def _commitment_id(ctx: Ctx | Opening_) -> int:
    return int(ctx.subject_id)


def _commitment(ctx: Ctx) -> Commitment | None:
    try:
        return ctx.procore.get_commitment(ctx.project_id, _commitment_id(ctx))
    except RemoteNotFound:
        return None


def _existing(ctx: Ctx) -> Commitment:
    found = _commitment(ctx)
    if found is None:
        raise Rejected(f"Commitment {_commitment_id(ctx)} is no longer in Procore.")
    return found


DOCUMENT = ErpTransaction(
    noun="transaction", ref_key="erp_document_id", evidence_key="erp_document",
    missing="This commitment has no ERP transaction to act on.",
    read=lambda erp, document_id: erp.get_purchase_document(document_id),
    delete=lambda erp, document_id, key: erp.delete_purchase_document(
        document_id, idempotency_key=key),
    still_there=STILL_IN_ERP,
)


# unlink ------------------------------------------------------------------------------------------


def probe_unlink(ctx: Ctx) -> StepResult | None:
    commitment = _existing(ctx)
    ctx.evidence["origin_id"] = commitment.origin_id
    return StepResult(UNLINKED) if commitment.origin_id is None else None


CLICK_WHERE = (
    "In Procore, open ERP Integrations › Commitments › Synced with ERP, find commitment"
    " {number} (id {id}) and click Unlink"
)


def unlink(ctx: Ctx) -> StepResult:
    """Check the ERP (the red message while the document is there), then have the link cleared:
    by the operator's click in Procore, or (integrator mode) through External Data Sync."""
    if (message := DOCUMENT.still_in_erp(ctx)) is not None:
        raise Rejected(message, alert=True)
    commitment = _existing(ctx)
    clear_link(
        ctx, commitment, lambda: _existing(ctx),
        lambda: [{"item_type": commitment.kind, "item_id": commitment.id, "origin_id": None,
                  "origin_data": None, "origin_code": None}],
        where=CLICK_WHERE.format(number=commitment.number, id=commitment.id),
        what=f"commitment {commitment.id}",
    )
    return StepResult(UNLINKED)


# correct -> confirm-resync ---------------------------------------------------------------------


def _corrected(ctx: Ctx, commitment: Commitment) -> StepResult:
    return StepResult(
        f"Corrected commitment {commitment.id} ({commitment.number}). Send it to"
        f" {ctx.erp.product_name} from Procore's ERP Integrations tool for the accounting"
        " approver, then run confirm-resync.",
        changes={"after": commitment.fields},
    )


def probe_correction(ctx: Ctx) -> StepResult | None:
    commitment = _existing(ctx)
    wanted = ctx.data or {}
    if all(commitment.fields.get(key) == value for key, value in wanted.items()):
        return _corrected(ctx, commitment)
    return None


def correct(ctx: Ctx) -> StepResult:
    if (done := probe_correction(ctx)) is not None:
        return done
    updated = ctx.procore.update_commitment(_existing(ctx), dict(ctx.data or {}))
    return _corrected(ctx, updated)


def confirm_resync(ctx: Ctx) -> StepResult:
    commitment = _existing(ctx)
    if commitment.origin_id is None:
        raise Rejected(
            f"Commitment {commitment.id} is not in {ctx.erp.product_name} yet: send it from"
            " Procore's ERP Integrations tool and wait for the accounting approver to accept it."
        )
    return StepResult(
        f"Commitment {commitment.id} is synced again with {ctx.erp.product_name}"
        f" as {commitment.origin_code or commitment.origin_id}.",
        changes={"erp_document_id": commitment.origin_id,
                 "erp_document_number": commitment.origin_code},
    )


# delete-in-procore -----------------------------------------------------------------------------


def probe_procore_deletion(ctx: Ctx) -> StepResult | None:
    if _commitment(ctx) is None:
        return StepResult(f"Deleted commitment {_commitment_id(ctx)} in Procore.")
    return None


def delete_in_procore(ctx: Ctx) -> StepResult:
    """Procore deletes only a Draft commitment: set it to Draft first (as its procedure says)."""
    commitment = _commitment(ctx)
    if commitment is None:
        return StepResult(f"Deleted commitment {_commitment_id(ctx)} in Procore.")
    if commitment.status != "Draft":
        commitment = ctx.procore.update_commitment(commitment, {"status": "Draft"})
    ctx.procore.delete_commitment(commitment)
    return StepResult(f"Set commitment {commitment.id} to Draft and deleted it in Procore.")


# opening -----------------------------------------------------------------------------------------


def open_commitment(ctx: Opening_) -> Opened:
    """Read the commitment; the ERP's connector must sync commitments, and this one must be
    synced (else there is nothing to unlink)."""
    commitment_id = _commitment_id(ctx)
    if not ctx.erp.syncs_commitments:
        raise Rejected(
            f"Refused: Procore's {ctx.erp.product_name} connector does not sync commitments;"
            " there is nothing to unlink."
        )
    try:
        commitment = ctx.procore.get_commitment(ctx.project_id, commitment_id)
    except RemoteNotFound:
        raise Rejected(
            f"Refused: commitment {commitment_id} was not found in project {ctx.project_id}"
            " (or you may not see it)."
        ) from None
    if not commitment.origin_id:
        raise Rejected(
            f"Refused: commitment {commitment_id} is not synced with the ERP (no origin_id);"
            " there is nothing to unlink."
        )
    return Opened(
        snapshot=dict(commitment.fields),
        remote_ref={
            "kind": commitment.kind,
            "erp_document_id": commitment.origin_id,
            "erp_document_number": commitment.origin_code,
        },
        label=f"commitment {commitment_id} ({commitment.number})",
    )


def commitment_fields(
    subject_id: str, remote_ref: Mapping[str, Any], results: Mapping[str, Any]
) -> dict[str, Any]:
    """The fields `show --json` adds for a commitment correction."""
    return {
        "commitment_id": int(subject_id),
        "erp_document_id": remote_ref.get("erp_document_id"),
        "resynced_as": results.get("erp_document_id"),
    }


# the definition ----------------------------------------------------------------------------------

S, D, U, K, R, X, C = (
    State.SYNCED,
    State.DELETED_IN_ERP,
    State.UNLINKED,
    State.CORRECTED,
    State.RESYNCED,
    State.DELETED,
    State.CANCELLED,
)

STEPS: tuple[Step, ...] = (
    Step(
        "delete-in-erp", (S,), D, ERP_STEP,
        action=DOCUMENT.delete_in_erp, probe=DOCUMENT.probe_deletion,
        summary="Delete (or void) the commitment's transaction in the ERP, then read it back.",
    ),
    Step(
        "confirm-erp-deletion", (S,), D, ERP_STEP,
        action=DOCUMENT.confirm_deletion,
        summary="Confirm a transaction deleted by hand in the ERP is gone.",
    ),
    Step(
        "unlink", (D,), U, ERP_STEP,
        action=unlink, probe=probe_unlink, out_of_order=DOCUMENT.still_in_erp,
        summary="Check the ERP once more, then clear the commitment's ERP link in Procore.",
    ),
    Step(
        "correct", (U,), K, Requirement.of(commitments=ADMIN),
        action=correct, probe=probe_correction, needs_data=True, preview=preview_correction,
        summary="Write the corrected fields from a data file; then send it to the ERP in Procore.",
    ),
    Step(
        "confirm-resync", (K,), R, Requirement.of(commitments=STANDARD_OR_ADMIN),
        action=confirm_resync,
        summary="Confirm the accounting approver accepted the commitment in the ERP.",
    ),
    Step(
        "delete-in-procore", (U,), X, Requirement.of(commitments=ADMIN),
        action=delete_in_procore, probe=probe_procore_deletion,
        summary="Set the commitment to Draft and delete it in Procore.",
    ),
    Step(
        "cancel", (S,), C, Requirement.of(commitments=ADMIN),
        summary="Abandon the correction before anything was changed anywhere.",
    ),
)  # fmt: skip

DEFINITION = WorkflowDefinition(
    name="commitment",
    version=1,
    states=State,
    initial=S,
    finals=frozenset({R, X, C}),
    steps=STEPS,
    opening=Opening(
        Requirement.of(commitments=ADMIN),
        summary="Read the commitment from Procore and keep a snapshot of it.",
    ),
    subject=Subject(
        type="commitment", noun="commitment", open=open_commitment, fields=commitment_fields,
    ),
    description="Unlink a commitment synced with the ERP, then correct it or delete it.",
    data=corrected_fields,
)
