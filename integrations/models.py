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

    def as_evidence(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "request_id": self.request_id,
        }
