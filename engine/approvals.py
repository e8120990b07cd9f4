"""Four-eyes approval of a step, kept in the audit log itself.

A policy table may say that a step runs only with a second person's approval
(``require_approval = true``; ``approver``: what the approver needs, by default the step's own
requirement; ``approval_minutes``: how long an approval stays valid, 60 by default). Nothing
about approvals is stored outside the audit log; its entries tell the whole story:

- **request**: an attempt at the step without a valid approval is refused, with evidence
  ``{"approval": {"status": "requested"}}``;
- **approval**: ``relink approve ID STEP --reason`` by someone else than the requester, with the
  approver's permissions read from Procore: an entry of action ``approve``, evidence
  ``{"approval": {"status": "granted", "step", "request_seq", "requested_by", "expires_at"}}``
  (refused, and audited, when it is the requester's own, when there is no request, or when the
  approver lacks the permissions);
- **expiry**: an attempt that finds the approval expired is refused, evidence
  ``{"approval": {"status": "expired", "seq"}}``;
- **consumption**: the first attempt that reaches a remote system under the approval (the
  entry putting the step in flight, or the completion of a step with no remote write) carries
  ``{"approval": {"status": "consumed", "seq", "approver"}}``, whatever happens next: a second
  attempt needs a new approval.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from workflows.definition import Requirement

DEFAULT_MINUTES = 60.0
APPROVE = "approve"


@dataclass(frozen=True, slots=True)
class ApprovalRule:
    """A step that needs a second person: what the approver needs, how long it lasts."""

    approver: Requirement | None  # None: the step's own requirement
    minutes: float = DEFAULT_MINUTES

    @classmethod
    def from_policy(cls, rule: Mapping[str, Any]) -> ApprovalRule | None:
        if rule.get("require_approval") is not True:
            return None
        approver = rule.get("approver")
        return cls(
            Requirement.parse(approver) if isinstance(approver, dict) else None,
            float(rule.get("approval_minutes", DEFAULT_MINUTES)),
        )


@dataclass(frozen=True, slots=True)
class Standing:
    """Where approvals of one step of one correction stand, read from its entries."""

    request: dict[str, Any] | None  # the latest request not yet approved
    granted: dict[str, Any] | None  # the approval not yet consumed or expired
    granted_evidence: dict[str, Any] | None


def standing(entries: Iterable[dict[str, Any]], step: str) -> Standing:
    """Replay a correction's entries (seq order) for ``step``."""
    request: dict[str, Any] | None = None
    granted: dict[str, Any] | None = None
    for entry in entries:
        approval = (entry.get("evidence") or {}).get("approval")
        if not isinstance(approval, dict):
            continue
        status = approval.get("status")
        if entry["action"] == APPROVE:
            if status == "granted" and approval.get("step") == step:
                granted, request = entry, None
        elif entry["action"] == step:
            if status == "requested":
                request = entry
            elif status in ("consumed", "expired") and granted is not None and (
                approval.get("seq") == granted["seq"]
            ):
                granted = None
    evidence = (granted.get("evidence") or {}).get("approval") if granted else None
    return Standing(request, granted, evidence)


def expires_at(now: dt.datetime, rule: ApprovalRule) -> str:
    return (now + dt.timedelta(minutes=rule.minutes)).astimezone(dt.UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def expired(evidence: Mapping[str, Any], now: dt.datetime) -> bool:
    ends = dt.datetime.fromisoformat(str(evidence["expires_at"]).replace("Z", "+00:00"))
    return ends <= now
