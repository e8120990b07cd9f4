"""The entry's wire form and its hash: lowercase hex SHA-256 of the RFC 8785 (JCS) bytes of the
entry without its ``hash`` field."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import rfc8785

GENESIS = "0" * 64

FIELDS = (
    "seq",
    "recorded_at",
    "workflow_id",
    "workflow",
    "workflow_version",
    "company_id",
    "project_id",
    "invoice_id",
    "erp_bill_id",
    "actor_id",
    "actor_login",
    "actor_name",
    "action",
    "from_state",
    "to_state",
    "outcome",
    "message",
    "reason",
    "evidence",
    "prev_hash",
    "hash",
)
OUTCOMES = ("in_flight", "succeeded", "refused", "failed")


def entry_hash(entry: dict[str, Any]) -> str:
    """The hash of an entry (its ``hash`` field, if present, is left out)."""
    body = {key: value for key, value in entry.items() if key != "hash"}
    return hashlib.sha256(rfc8785.dumps(body)).hexdigest()


def evidence_text(evidence: dict[str, Any]) -> str:
    """How evidence is stored: compact JSON text that parses back to the same object."""
    return json.dumps(evidence, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def entry_from_row(row: Any) -> dict[str, Any]:
    """The wire form of a stored row (a SQLAlchemy Row or mapping), fields in spec order."""
    mapping = row._mapping if hasattr(row, "_mapping") else row
    entry = {key: mapping[key] for key in FIELDS}
    entry["evidence"] = json.loads(entry["evidence"])
    return entry
