"""Audit entries of the use cases above one instance: a batch or plan created and run, and a
refusal that names no single subject (a number that matches none, or several). They are format 2
entries like every other (spec/audit.md); the subject is the batch (``subject_type`` ``batch`` or
``plan``) or, for a refusal, the workflow's subject type with no id."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

from engine.attempt import AUDIT_FORMAT

if TYPE_CHECKING:
    from engine.service import CorrectionService

# the actions these entries record (`relink audit log --action ...` accepts them)
BATCH_START, BATCH_RUN, PLAN_START, PLAN_RUN = "batch-start", "batch-run", "plan-start", "plan-run"
ACTIONS = (BATCH_START, BATCH_RUN, PLAN_START, PLAN_RUN)


def append(
    service: CorrectionService,
    conn: Connection,
    *,
    action: str,
    outcome: str,
    message: str,
    subject_type: str,
    subject_id: str | None,
    project_id: int | None,
    reason: str | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    evidence: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Append one entry in the caller's transaction, as the operator the service reads."""
    definition = service.definition
    actor = service.permissions.actor()
    evidence = dict(evidence or {})
    evidence["calls"] = evidence.get("calls", []) + service.remotes.drain_calls()
    fingerprint = service.policy_fingerprints.get(definition.name)
    if fingerprint is not None:
        evidence["policy_fingerprint"] = fingerprint
    return service.audit.append(conn, {
        "format": AUDIT_FORMAT,
        "workflow_id": None,
        "workflow": definition.name,
        "workflow_version": definition.version,
        "company_id": service.remotes.procore.company_id,
        "project_id": project_id,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "actor_id": actor.id,
        "actor_login": actor.login,
        "actor_name": actor.name,
        "action": action,
        "from_state": from_state,
        "to_state": to_state if to_state is not None else from_state,
        "outcome": outcome,
        "message": message,
        "reason": reason,
        "evidence": evidence,
    })
