"""The ERP half of Procore's correction procedures, written once: delete (or void) the subject's
transaction in the ERP and read it back, confirm one deleted by hand, and check it is gone before
Procore's link is cleared. Each workflow names its transaction (a bill, a purchasing document)
and how its ERP reads and deletes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workflows.definition import Requirement, StepContext, StepResult
from workflows.errors import Rejected

Ctx = StepContext[Any, Any]

ADMIN = frozenset({"Admin"})
STANDARD_OR_ADMIN = frozenset({"Standard", "Admin"})
# product.md: deleting the ERP transaction and unlinking need Admin on Commitments, Standard or
# Admin on ERP Integrations, and Can Push to Accounting
ERP_STEP = Requirement.of(
    commitments=ADMIN, erp_integrations=STANDARD_OR_ADMIN, privileges={"can_push_to_accounting"}
)
UNLINKED = "Successfully Unlinked"  # Procore's green message


@dataclass(frozen=True, slots=True)
class ErpTransaction:
    """The ERP's transaction of a subject.

    ``noun`` names it to the operator ("bill"); ``ref_key`` is where opening kept its id in the
    remote reference; ``evidence_key`` where each read is recorded; ``missing`` is the refusal
    when the subject has none; ``read`` returns it (an object with ``id`` and ``status``) or
    None when it is gone; ``delete`` deletes or voids it; ``still_there`` is Procore's own
    message, with ``{erp}``, when the link is to be cleared while the transaction exists."""

    noun: str
    ref_key: str
    evidence_key: str
    missing: str
    read: Callable[[Any, str], Any | None]
    delete: Callable[[Any, str, str], None]
    still_there: str

    def ref(self, ctx: Ctx) -> str | None:
        found = ctx.remote_ref.get(self.ref_key)
        return None if found is None else str(found)

    def required(self, ctx: Ctx) -> str:
        if not (found := self.ref(ctx)):
            raise Rejected(self.missing)
        return found

    def gone(self, ctx: Ctx) -> bool:
        """Read it (recorded as evidence): True when the ERP no longer has it."""
        record = self.read(ctx.erp, self.required(ctx))
        if record is not None:
            ctx.evidence[self.evidence_key] = {"id": record.id, "status": record.status}
            return False
        ctx.evidence[self.evidence_key] = {"id": self.ref(ctx), "status": "gone"}
        return True

    # the steps -----------------------------------------------------------------------------

    def probe_deletion(self, ctx: Ctx) -> StepResult | None:
        if self.gone(ctx):
            return StepResult(
                f"{self.noun.capitalize()} {self.ref(ctx)} is deleted in {ctx.erp.product_name}."
            )
        return None

    def delete_in_erp(self, ctx: Ctx) -> StepResult:
        if (done := self.probe_deletion(ctx)) is not None:
            return done
        self.delete(ctx.erp, self.required(ctx), ctx.idempotency_key)
        if not self.gone(ctx):
            raise Rejected(
                f"{ctx.erp.product_name} still shows {self.noun} {self.ref(ctx)} after the delete."
            )
        return StepResult(f"Deleted {self.noun} {self.ref(ctx)} in {ctx.erp.product_name}.")

    def confirm_deletion(self, ctx: Ctx) -> StepResult:
        if self.gone(ctx):
            return StepResult(
                f"Confirmed: {self.noun} {self.ref(ctx)} is no longer in {ctx.erp.product_name}."
            )
        raise Rejected(
            f"{self.noun.capitalize()} {self.ref(ctx)} still exists in {ctx.erp.product_name}"
            f" (status {ctx.evidence[self.evidence_key]['status']}); delete it there, or run"
            " delete-in-erp."
        )

    def still_in_erp(self, ctx: Ctx) -> str | None:
        """Procore's red message while the transaction exists, else None (unlink's order check)."""
        return None if self.gone(ctx) else self.still_there.format(erp=ctx.erp.product_name)
