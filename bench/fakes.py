"""In-process fakes of Procore and an ERP for the engine benchmark (P2): no HTTP, no latency.

They implement ``integrations.base.ProcoreAPI`` and ``ERPConnector`` over a small in-memory
world seeded from the sandbox's batch invoices (cloned past the 200 the seed holds), follow the
same rules the workflow relies on (a synced invoice cannot be deleted, a deleted bill reads as
gone, ...) and record one :class:`~integrations.models.Call` per call they answer, so the
engine's audit evidence has the size it has in real use.
"""

from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from integrations.errors import RemoteNotFound, RemoteRefused
from integrations.models import Bill, Call, Requisition, User

COMPANY, PROJECT, FIRST_INVOICE = 4021, 102, 9200
ANA = User(7001, "ana@summit.example", "Ana Alvarez")


@dataclass
class FakeWorld:
    """Invoices (Procore's fields) and bills (id -> exists) of ``count`` corrections."""

    invoices: dict[int, dict[str, Any]] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)
    bills: dict[str, bool] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(9_900_000_000))
    requests: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @classmethod
    def seeded(cls, count: int) -> FakeWorld:
        from sandbox.world import SandboxWorld

        sandbox = SandboxWorld("qbo")
        _, _, body = sandbox.handle("GET", "/_sandbox/state/requisitions",
                                    {"project_id": str(PROJECT)}, {})
        batch = [r for r in json.loads(body) if r["id"] >= FIRST_INVOICE]
        world = cls()
        for n in range(count):
            record = copy.deepcopy(batch[n % len(batch)])
            record.pop("deleted", None)
            record["id"] = FIRST_INVOICE + n
            record["origin_id"] = str(1200 + n)
            world.invoices[record["id"]] = record
            world.bills[record["origin_id"]] = True
        return world

    def call(self, system: str, method: str, path: str, status: int) -> Call:
        return Call(system, method, path, status, f"fake-{next(self.requests):08d}")


def _requisition(fields: dict[str, Any]) -> Requisition:
    # the world never changes a fields dict in place (it replaces it), so sharing it is safe
    return Requisition(fields["id"], fields["project_id"], fields["commitment_id"],
                       fields["origin_id"], fields)


class FakeProcore:
    """``ProcoreAPI`` answered from a :class:`FakeWorld` as Ana (Admin everywhere)."""

    def __init__(self, world: FakeWorld, company_id: int = COMPANY) -> None:
        self.world = world
        self.company_id = company_id
        self._calls: list[Call] = []

    def _log(self, method: str, path: str, status: int = 200) -> None:
        self._calls.append(self.world.call("procore", method, path, status))

    def drain_calls(self) -> list[Call]:
        calls, self._calls = self._calls, []
        return calls

    def me(self) -> User:
        self._log("GET", "/rest/v1.0/me")
        return ANA

    def can_push_to_accounting(self) -> bool:
        self._log("GET", f"/rest/v1.1/companies/{self.company_id}/me")
        return True

    def tool_levels(self, *, project_id: int | None = None) -> dict[str, str]:
        if project_id is not None:
            self._log("GET", f"/rest/v1.0/projects/{project_id}/users/7001/permissions")
            return {"commitments": "Admin"}
        self._log("GET", f"/rest/v1.0/companies/{self.company_id}/users/7001/permissions")
        return {"erp_integrations": "Admin"}

    def get_requisition(self, project_id: int, requisition_id: int) -> Requisition:
        path = f"/rest/v1.1/requisitions/{requisition_id}?project_id={project_id}"
        found = self.world.invoices.get(requisition_id)
        if found is None or requisition_id in self.world.deleted:
            self._log("GET", path, 404)
            raise RemoteNotFound("Not Found", system="procore", status=404)
        self._log("GET", path)
        return _requisition(found)

    def find_requisitions(
        self, project_id: int, *, commitment_id: int | None = None,
        invoice_number: str | None = None,
    ) -> list[Requisition]:
        self._log("GET", f"/rest/v1.1/requisitions?project_id={project_id}&page=1")
        return [
            _requisition(fields) for rid, fields in self.world.invoices.items()
            if rid not in self.world.deleted and fields["project_id"] == project_id
            and (commitment_id is None or fields["commitment_id"] == commitment_id)
            and (invoice_number is None or fields["invoice_number"] == invoice_number)
        ]

    def sync_external_data(self, updates: list[dict[str, Any]]) -> None:
        """External Data Sync as the integration's service account (integrator mode)."""
        self._log("PATCH", f"/rest/v1.0/companies/{self.company_id}/external_data/sync")
        for update in updates:
            if update["item_type"] != "requisition":
                continue  # the items' links: nothing the fake world keeps
            fields = self.world.invoices[update["item_id"]]
            self.world.invoices[update["item_id"]] = {
                **fields, "origin_id": None, "origin_data": None, "erp_status": None,
            }

    def delete_requisition(self, project_id: int, requisition_id: int) -> None:
        fields = self.world.invoices[requisition_id]
        path = f"/rest/v1.1/requisitions/{requisition_id}?project_id={project_id}"
        if fields["origin_id"] is not None or not fields["deletable"]:
            self._log("DELETE", path, 422)
            raise RemoteRefused("The requisition cannot be deleted.", system="procore",
                                status=422)
        self._log("DELETE", path, 204)
        self.world.deleted.add(requisition_id)

    def create_requisition(
        self, project_id: int, commitment_id: int, requisition: dict[str, Any]
    ) -> Requisition:
        self._log("POST", "/rest/v1.1/requisitions", 201)
        new_id = next(self.world.ids)
        fields = {**copy.deepcopy(requisition), "id": new_id, "project_id": project_id,
                  "commitment_id": commitment_id, "origin_id": None, "origin_data": None,
                  "erp_status": None}
        self.world.invoices[new_id] = fields
        return _requisition(fields)


class FakeERP:
    """``ERPConnector`` of QuickBooks Online answered from a :class:`FakeWorld`."""

    key = "qbo"
    product_name = "QuickBooks Online"
    company = "9130357"

    def __init__(self, world: FakeWorld) -> None:
        self.world = world
        self._calls: list[Call] = []

    def drain_calls(self) -> list[Call]:
        calls, self._calls = self._calls, []
        return calls

    def get_bill(self, bill_id: str) -> Bill | None:
        exists = self.world.bills.get(bill_id, False)
        self._calls.append(self.world.call(
            "qbo", "GET", f"/v3/company/9130357/bill/{bill_id}", 200 if exists else 400))
        return Bill(bill_id, "Open") if exists else None

    def delete_bill(self, bill_id: str, *, idempotency_key: str) -> None:
        self._calls.append(self.world.call(
            "qbo", "POST", f"/v3/company/9130357/bill?operation=delete&requestid="
            f"{idempotency_key[:50]}", 200))
        self.world.bills[bill_id] = False
