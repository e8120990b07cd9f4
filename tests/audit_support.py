"""Building and tampering with audit logs in the audit tests (databases come from the
``db_url`` fixture of conftest.py: a SQLite file, or a PostgreSQL schema of its own)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from audit.log import AuditLog
from engine.db import Database

POSTGRES_ENV = "RELINK_TEST_POSTGRES_URL"
SQLITE_TRIGGERS = ("audit_entry_no_update", "audit_entry_no_delete", "audit_entry_no_replace",
                   "audit_head_no_insert", "audit_head_no_delete", "audit_head_forward")
POSTGRES_TRIGGERS = (
    ("audit_entry_no_update_delete", "audit_entry"), ("audit_entry_no_truncate", "audit_entry"),
    ("audit_head_no_insert_delete", "audit_head"), ("audit_head_no_truncate", "audit_head"),
    ("audit_head_forward", "audit_head"),
)
WORKFLOW = "subcontractor-invoice"
ACTORS = [
    (7001, "dana.whitfield@harborbuild.example", "Dana Whitfield"),
    (7002, "luis.ortega@harborbuild.example", "Luis Ortega"),
]


def postgres_url() -> str | None:
    """The PostgreSQL server of the tests, as a libpq URL, or None when unset."""
    url = os.environ.get(POSTGRES_ENV)
    return url.replace("postgresql+psycopg://", "postgresql://", 1) if url else None


@contextlib.contextmanager
def opened(url: str) -> Iterator[Database]:
    """The relink database at ``url`` (already initialised), disposed of afterwards."""
    db = Database(url)
    try:
        yield db
    finally:
        db.dispose()


class Raw:
    """A raw DB-API connection (sqlite3 or psycopg), autocommitting, for tampering."""

    def __init__(self, db: Database) -> None:
        self.dialect = db.dialect
        if db.dialect == "sqlite":
            self.conn: Any = sqlite3.connect(db.engine.url.database, isolation_level=None)
        else:
            url = db.engine.url.set(drivername="postgresql")
            self.conn = psycopg.connect(url.render_as_string(hide_password=False),
                                        autocommit=True)

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.dialect == "postgresql":
            sql = sql.replace("?", "%s")
        cursor = self.conn.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []

    def drop_triggers(self) -> None:
        """Drop every append-only trigger of the audit tables, as their owner could."""
        if self.dialect == "sqlite":
            for name in SQLITE_TRIGGERS:
                self.execute(f"DROP TRIGGER {name}")
        else:
            for name, table in POSTGRES_TRIGGERS:
                self.execute(f"DROP TRIGGER {name} ON {table}")

    def close(self) -> None:
        self.conn.close()


def correction(workflow_id: int, invoice_id: int, project_id: int, actor: int = 0,
               reason: str = "Wrong retainage on line 3") -> list[dict[str, Any]]:
    """The entries of one correction: a start, an ERP deletion in two phases, a refused
    delete-in-procore, then the unlink."""
    actor_id, login, name = ACTORS[actor % len(ACTORS)]
    base = {
        "workflow_id": workflow_id, "workflow": WORKFLOW, "workflow_version": 1,
        "company_id": 4021, "project_id": project_id, "invoice_id": invoice_id,
        "erp_bill_id": str(180 + workflow_id), "actor_id": actor_id, "actor_login": login,
        "actor_name": name, "reason": reason,
    }
    before = {"invoice_number": f"INV-{invoice_id}", "total": "18250.00", "retainage": "912.50"}
    steps = [
        ("start", None, "Exported", "succeeded", f"Correction {workflow_id} started",
         {"permissions": {"invoices": "admin"}, "before": before}),
        ("delete-in-erp", "Exported", "Exported", "in_flight", "Deleting the bill in the ERP",
         {"idempotency_key": f"k-{workflow_id}-1"}),
        ("delete-in-erp", "Exported", "DeletedInErp", "succeeded", "Deleted in the ERP",
         {"calls": [{"method": "DELETE", "status": 200, "request_id": f"r-{workflow_id}"}],
          "erp_reply": {"Id": str(180 + workflow_id), "status": "Deleted"}}),
        ("delete-in-procore", "DeletedInErp", "DeletedInErp", "refused",
         "Refused: delete-in-procore is not allowed in state DeletedInErp. Next: unlink.", {}),
        ("unlink", "DeletedInErp", "Unlinked", "succeeded", "Successfully Unlinked",
         {"after": before | {"origin_id": None}}),
    ]
    return [
        base | {"action": action, "from_state": src, "to_state": dst, "outcome": outcome,
                "message": message, "evidence": evidence}
        for action, src, dst, outcome, message, evidence in steps
    ]


def generic(workflow_id: int, subject_type: str, subject_id: str, project_id: int = 101,
            actor: int = 0) -> list[dict[str, Any]]:
    """The entries of one correction as the generic engine writes them: format 2, with a
    subject; ``invoice_id`` (and the ERP bill) only when the subject is a requisition."""
    invoice = subject_type == "requisition"
    return [
        fields | {"format": 2, "subject_type": subject_type, "subject_id": subject_id,
                  "workflow": f"{subject_type}-correction",
                  "invoice_id": int(subject_id) if invoice else None,
                  "erp_bill_id": fields["erp_bill_id"] if invoice else None}
        for fields in correction(workflow_id, 0, project_id, actor=actor)
    ]


def append(db: Database, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Append ``entries``, each in its own write transaction as the engine does."""
    log = AuditLog(dialect=db.dialect)
    written = []
    for fields in entries:
        with db.write() as conn:
            written.append(log.append(conn, fields))
    return written


def build_log(db: Database, corrections: int = 3) -> list[dict[str, Any]]:
    """A log of ``corrections`` corrections (5 entries each) on invoices 9001, 9002, ..."""
    entries: list[dict[str, Any]] = []
    for n in range(1, corrections + 1):
        entries += correction(n, 9000 + n, 101 + n % 2, actor=n)
    return append(db, entries)


# fixtures of the tamper and parallel tests (imported there by name) -------------------------


@pytest.fixture(name="db")
def fixture_db(db_url: str) -> Iterator[Database]:
    """A database (every backend) holding a sound log of 15 entries: 3 corrections of 5."""
    with opened(db_url) as db:
        build_log(db)
        yield db


@pytest.fixture(name="raw")
def fixture_raw(db: Database) -> Iterator[Raw]:
    """A raw connection to ``db`` with its append-only triggers dropped: a tamperer's."""
    raw = Raw(db)
    raw.drop_triggers()
    yield raw
    raw.close()
