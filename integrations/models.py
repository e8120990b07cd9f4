"""Plain values exchanged between the clients and the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class User:
    """The Procore user behind a token (``GET /rest/v1.0/me``)."""

    id: int
    login: str
    name: str


@dataclass(frozen=True, slots=True)
class Requisition:
    """A Procore subcontractor invoice; ``fields`` is the whole validated body Procore sent."""

    id: int
    project_id: int
    commitment_id: int
    origin_id: str | None
    fields: dict[str, Any]


COMMITMENT_KINDS = ("work_order_contract", "purchase_order_contract")


@dataclass(frozen=True, slots=True)
class Commitment:
    """A Procore commitment (``kind`` is the resource: ``work_order_contract``, a subcontract, or
    ``purchase_order_contract``); ``fields`` is the whole validated body Procore sent.

    ``status`` is Procore's capitalised value (``"Approved"``, ``"Draft"``, ...); a non-null
    ``origin_id`` means synced with the ERP (it holds the ERP transaction's id, ``origin_code``
    its number)."""

    id: int
    project_id: int
    kind: str
    number: str | None
    title: str | None
    status: str
    origin_id: str | None
    origin_code: str | None
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PurchaseDocument:
    """The ERP's transaction for a commitment (a Xero PurchaseOrder, a Sage Intacct purchasing
    document) while it exists (a deleted one is reported as ``None``)."""

    id: str
    number: str | None
    status: str


@dataclass(frozen=True, slots=True)
class Bill:
    """An ERP bill that still exists (a deleted or voided one is reported as ``None``)."""

    id: str
    status: str
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Call:
    """One HTTP exchange, kept as audit evidence. Never holds a header or a body."""

    system: str
    method: str
    path: str
    status: int | None
    request_id: str | None = None
    # seconds this machine's clock was ahead of the answer's Date header (None: no Date); not
    # evidence (`relink doctor` reads it)
    clock_ahead: float | None = None

    def as_evidence(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "request_id": self.request_id,
        }
