"""What the reliability scenarios (R1 ``bench/races.py``, R2 ``bench/crashes.py``) share.

Not a benchmark itself: how to run ``relink`` against a database and a sandbox (a real process,
or the service layer in-process), what the sandbox says happened (its state and call log), which
local state that implies, and the audit chain check. The tests import these through
``bench.races`` / ``bench.crashes`` and run the same scenarios at CI size.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from integrations.http import tls_context

PROJECT = 102
FIRST_INVOICE = 9200  # the sandbox's 200 batch invoices: 9200-9399 on project 102,
FIRST_BILL = 1200  # exported as the ERP bills 1200-1399 (QuickBooks Online ids)
BATCH = 200
STEPS = ("delete-in-erp", "unlink", "delete-in-procore", "reenter")
ACTIONS = ("start", *STEPS)
TOKEN = "sandbox-ana"
RELINK = str(Path(sys.executable).with_name("relink"))


def invoices(count: int) -> list[int]:
    if not 1 <= count <= BATCH:
        raise SystemExit(f"between 1 and {BATCH} corrections (the sandbox's batch invoices)")
    return [FIRST_INVOICE + n for n in range(count)]


def corrected_number(invoice_id: int) -> str:
    """The invoice number the ``reenter`` data file sets, so the new invoice can be found."""
    return f"INV-C-{invoice_id}"


def data_file(folder: Path, invoice_id: int) -> Path:
    path = folder / f"reenter-{invoice_id}.json"
    if not path.exists():
        path.write_text(json.dumps({"invoice_number": corrected_number(invoice_id)}))
    return path


@dataclass(frozen=True)
class Target:
    """A relink database and the sandbox it talks to."""

    db_url: str
    sandbox_url: str
    sandbox_env: Mapping[str, str]
    extra_env: Mapping[str, str] = field(default_factory=dict)  # wins over the rest

    def env(self) -> dict[str, str]:
        """The environment of a ``relink`` process (and of the in-process service)."""
        return {
            **os.environ,
            **self.sandbox_env,
            "RELINK_PROCORE_TOKEN": TOKEN,
            "RELINK_DATABASE_URL": self.db_url,
            "RELINK_CONFIG": "",
            "NO_COLOR": "1",
            **self.extra_env,
        }

    def but(self, **env: str) -> Target:
        """The same target with these environment variables changed."""
        return Target(self.db_url, self.sandbox_url, self.sandbox_env, {**self.extra_env, **env})

    def service(self) -> Any:
        """The service layer, configured exactly as ``relink`` would be with :meth:`env`."""
        from engine.app import correction_service
        from engine.settings import load_settings

        env = self.env()
        return correction_service(load_settings(env=env), env, workflow="subcontractor-invoice")

    def relink(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run one real ``relink`` process to completion."""
        return subprocess.run([RELINK, *args], env=self.env(), capture_output=True, text=True,
                              timeout=timeout, check=False)

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([RELINK, *args], env=self.env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)

    # the sandbox ------------------------------------------------------------------------------

    def control(self, path: str) -> Any:
        with httpx.Client(
                verify=tls_context(False), base_url=self.sandbox_url, timeout=30) as client:
            response = client.get(f"/_sandbox/{path}")
            response.raise_for_status()
            return response.json()

    def calls(self) -> list[dict[str, Any]]:
        return list(self.control("calls"))

    def remote_states(self, wanted: list[int]) -> dict[int, str]:
        """For each invoice, the workflow state the sandbox's data implies."""
        requisitions = self.control(f"state/requisitions?project_id={PROJECT}")
        by_id = {r["id"]: r for r in requisitions}
        by_number = {r["invoice_number"]: r for r in requisitions if not r["deleted"]}
        bills = {b["qbo_id"]: b for b in self.control("state/bills")}
        found = {}
        for invoice_id in wanted:
            invoice = by_id[invoice_id]
            bill = bills[FIRST_BILL + invoice_id - FIRST_INVOICE]
            if corrected_number(invoice_id) in by_number:
                found[invoice_id] = "Reentered"
            elif invoice["deleted"]:
                found[invoice_id] = "DeletedInProcore"
            elif invoice["origin_id"] is None:
                found[invoice_id] = "Unlinked"
            elif not bill["exists"]:
                found[invoice_id] = "DeletedInERP"
            else:
                found[invoice_id] = "Exported"
        return found


def mutation(call: dict[str, Any]) -> str | None:
    """The kind of remote change a logged API call is, or None for a read."""
    method, path = call["method"], call["path"]
    if method == "GET":
        return None
    if method == "POST" and "/bill" in path and "operation=delete" in path:
        return "erp-delete"
    if method == "PATCH" and path.split("?")[0].endswith("/external_data/sync"):
        return "unlink"
    if method == "DELETE" and "/requisitions/" in path:
        return "procore-delete"
    if method == "POST" and path.split("?")[0].endswith("/requisitions"):
        return "procore-create"
    return f"{method} {path.split('?')[0]}"


def mutations(calls: list[dict[str, Any]]) -> Counter[str]:
    return Counter(kind for call in calls if (kind := mutation(call)) is not None)


def local_states(db_url: str) -> dict[int, dict[str, Any]]:
    """Every correction by invoice: its state and step in flight, read from the database."""
    from sqlalchemy import select

    from engine.db import Database
    from engine.tables import WORKFLOW

    db = Database(db_url)
    try:
        with db.read() as conn:
            rows = conn.execute(select(WORKFLOW.c.subject_id, WORKFLOW.c.id, WORKFLOW.c.state,
                                       WORKFLOW.c.in_flight_step)
                                .where(WORKFLOW.c.subject_type == "requisition")).all()
    finally:
        db.dispose()
    found: dict[int, dict[str, Any]] = {}
    for subject_id, wid, state, in_flight in rows:
        invoice_id = int(subject_id)
        found.setdefault(invoice_id, {"ids": [], "state": state, "in_flight": in_flight})
        found[invoice_id]["ids"].append(wid)
    return found


def succeeded(db_url: str) -> Counter[tuple[int, str]]:
    """How many times each (invoice, action) succeeded, from the audit log."""
    from audit.log import Filters, query
    from engine.db import Database

    db = Database(db_url)
    try:
        with db.read() as conn:
            return Counter((e["invoice_id"], e["action"])
                           for e in query(conn, Filters(outcome="succeeded")))
    finally:
        db.dispose()


def verify(target: Target) -> int:
    """``relink audit verify`` as a real process: its exit code."""
    return target.relink("audit", "verify").returncode
