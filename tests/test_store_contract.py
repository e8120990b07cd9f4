"""The contract of the workflow store and the audit log, the same on every backend (a SQLite
file and a PostgreSQL schema, through the ``db_url`` fixture)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError

from audit.chain import GENESIS, entry_hash
from audit.log import AuditLog, Filters, head, query
from engine.db import Database
from engine.errors import Conflict
from engine.reviews import AuditService
from engine.store import DuplicateOpen, WorkflowStore
from tests.audit_support import Raw

STORE = WorkflowStore()
NOW = "2026-02-03T09:00:00.000000Z"


@pytest.fixture(name="db")
def fixture_db(db_url: str) -> Iterator[Database]:
    """The initialised database of ``db_url``, disposed of afterwards."""
    db = Database(db_url)
    yield db
    db.dispose()


def fields(n: int, **extra: Any) -> dict[str, Any]:
    """An audit entry's caller-supplied fields."""
    return {
        "workflow_id": n, "workflow": "subcontractor-invoice", "workflow_version": 1,
        "company_id": 4021, "project_id": 101, "invoice_id": 9000 + n, "erp_bill_id": str(n),
        "actor_id": 7001, "actor_login": "ana@summit.example", "actor_name": "Ana Alvarez",
        "action": "delete-in-erp", "from_state": "Exported", "to_state": "DeletedInERP",
        "outcome": "succeeded", "message": f"entry {n}", "reason": None,
        "evidence": {"calls": [{"method": "GET", "path": f"/bill/{n}", "status": 200}]},
    } | extra


def workflow(
    invoice_id: int = 9001, company_id: int = 4021, subject_type: str = "requisition"
) -> dict[str, Any]:
    """The values of a new workflow instance."""
    return {
        "workflow": "subcontractor-invoice", "version": 1, "state": "Exported",
        "company_id": company_id, "project_id": 101,
        "subject_type": subject_type, "subject_id": str(invoice_id),
        "remote_ref": {"erp_bill_id": "183"},
        "erp": "QuickBooks Online", "erp_key": "qbo", "reason": "typo",
        "snapshot": {"id": invoice_id, "invoice_number": "INV-1001"},
        "created_at": NOW, "updated_at": NOW,
    }


def append(db: Database, *entries: dict[str, Any]) -> list[dict[str, Any]]:
    """Append each entry in a write transaction of its own."""
    log = AuditLog(dialect=db.dialect)
    written = []
    for entry in entries:
        with db.write() as conn:
            written.append(log.append(conn, entry))
    return written


def stored(db: Database) -> list[dict[str, Any]]:
    with db.read() as conn:
        return list(query(conn, Filters()))


def insert(db: Database, values: dict[str, Any]) -> int:
    with db.write() as conn:
        return STORE.insert(conn, values)


# the audit log -----------------------------------------------------------------------------


def test_appends_are_chained_in_order(db: Database) -> None:
    """Entries get seq 1, 2, 3...; each one's prev_hash is the hash before it; the head follows."""
    written = append(db, *(fields(n) for n in range(1, 6)))
    entries = stored(db)
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert [e["prev_hash"] for e in entries] == [GENESIS] + [e["hash"] for e in entries[:-1]]
    assert all(e["hash"] == entry_hash(e) for e in entries)
    assert entries == written
    with db.read() as conn:
        assert (head(conn)["seq"], head(conn)["hash"]) == (5, entries[-1]["hash"])
    assert AuditService(db).verify()["entries"] == 5


def test_a_rolled_back_append_leaves_no_gap(db: Database) -> None:
    """An append whose transaction rolls back leaves neither an entry nor a moved head."""
    append(db, fields(1))
    with pytest.raises(RuntimeError), db.write() as conn:
        AuditLog(dialect=db.dialect).append(conn, fields(2))
        raise RuntimeError("the step failed after its entry")
    append(db, fields(3))
    assert [(e["seq"], e["message"]) for e in stored(db)] == [(1, "entry 1"), (2, "entry 3")]
    assert AuditService(db).verify()["entries"] == 2


def test_concurrent_appends_from_threads_stay_contiguous(db_url: str) -> None:
    """6 threads (each its own connection pool) appending 15 entries each: seq 1..90, no gap,
    no duplicate, each thread's entries in its own order, and the chain verifies."""
    barrier = threading.Barrier(6)

    def worker(thread: int) -> list[int]:
        db = Database(db_url)
        try:
            barrier.wait()
            return [e["seq"] for e in append(db, *(fields(thread * 100 + n)
                                                    for n in range(15)))]
        finally:
            db.dispose()

    with ThreadPoolExecutor(max_workers=6) as pool:
        seqs = list(pool.map(worker, range(6)))
    assert all(mine == sorted(mine) for mine in seqs)
    assert sorted(s for mine in seqs for s in mine) == list(range(1, 91))
    db = Database(db_url)
    try:
        entries = stored(db)
        assert [e["seq"] for e in entries] == list(range(1, 91))
        assert AuditService(db).verify()["entries"] == 90
    finally:
        db.dispose()


@pytest.mark.parametrize("statement", ["UPDATE audit_entry SET message = 'edited'",
                                       "DELETE FROM audit_entry WHERE seq = 1"])
def test_entries_cannot_be_changed_through_a_normal_connection(
    db: Database, statement: str
) -> None:
    """The append-only triggers reject UPDATE and DELETE on audit_entry; nothing changes."""
    before = append(db, fields(1), fields(2))
    with pytest.raises(DBAPIError, match="append-only"), db.write() as conn:
        conn.exec_driver_sql(statement)
    assert stored(db) == before


# the workflow store ------------------------------------------------------------------------


def test_compare_and_set_applies_once_per_revision(db: Database) -> None:
    """An update at the current revision applies, bumps the revision and returns the row as
    written; a second one at the same (now old) revision changes nothing and returns None."""
    wid = insert(db, workflow())
    with db.write() as conn:
        written = STORE.update(conn, wid, 1, {"in_flight_step": "delete-in-erp",
                                              "in_flight_data": {"a": [1, 2]}})
        stale = STORE.update(conn, wid, 1, {"state": "Cancelled"})
    assert stale is None
    assert written is not None
    assert (written.revision, written.state, written.in_flight_step) == (2, "Exported",
                                                                         "delete-in-erp")
    assert written.in_flight_data == {"a": [1, 2]}
    with db.read() as conn:
        assert STORE.get(conn, wid) == written


def test_compare_and_set_of_an_unknown_row_is_none(db: Database) -> None:
    """Updating a correction that does not exist returns None."""
    with db.write() as conn:
        assert STORE.update(conn, 4242, 1, {"state": "Cancelled"}) is None


def test_racing_compare_and_sets_have_one_winner(db_url: str, db: Database) -> None:
    """8 threads update the same row at the same revision: exactly one wins."""
    wid = insert(db, workflow())
    barrier = threading.Barrier(8)

    def worker(n: int) -> bool:
        other = Database(db_url)
        try:
            barrier.wait()
            with other.write() as conn:
                return STORE.update(conn, wid, 1, {"reason": f"thread {n}"}) is not None
        except Conflict:  # the lock wait ran out: a loser too
            return False
        finally:
            other.dispose()

    with ThreadPoolExecutor(max_workers=8) as pool:
        won = list(pool.map(worker, range(8)))
    assert won.count(True) == 1
    with db.read() as conn:
        instance = STORE.get(conn, wid)
    assert instance is not None and instance.revision == 2
    assert instance.reason == f"thread {won.index(True)}"


def test_one_open_correction_per_subject(db: Database) -> None:
    """A second open correction of the same subject is refused; another company's, another
    subject type with the same id, or the same subject once its correction is final, may have
    one."""
    first = insert(db, workflow(9001))
    with pytest.raises(DuplicateOpen):
        insert(db, workflow(9001))
    other_company = insert(db, workflow(9001, company_id=4022))
    other_type = insert(db, workflow(9001, subject_type="commitment"))
    with db.read() as conn:
        assert STORE.of_subject(conn, 4021, "requisition", "9001") == (first, 1)
        assert STORE.of_subject(conn, 4022, "requisition", "9001") == (other_company, 1)
        assert STORE.of_subject(conn, 4021, "commitment", "9001") == (other_type, 1)
    with db.write() as conn:
        assert STORE.update(conn, first, 1, {"state": "Cancelled", "open_subject_id": None})
    again = insert(db, workflow(9001))
    with db.read() as conn:
        assert STORE.of_subject(conn, 4021, "requisition", "9001") == (again, 2)


def test_the_duplicate_refusal_keeps_the_transaction_usable(db: Database) -> None:
    """After DuplicateOpen the same transaction can go on (the insert ran in a savepoint)."""
    insert(db, workflow(9001))
    with db.write() as conn:
        with pytest.raises(DuplicateOpen):
            STORE.insert(conn, workflow(9001))
        AuditLog(dialect=db.dialect).append(conn, fields(1, outcome="refused"))
    assert len(stored(db)) == 1


# lock waits --------------------------------------------------------------------------------


def test_every_connection_bounds_its_lock_waits(db_url: str) -> None:
    """Every connection, read or write, waits at most the lock timeout for a lock (SQLite
    busy_timeout, PostgreSQL lock_timeout); 5 s unless told otherwise."""
    assert Database(db_url).lock_timeout_ms == 5000
    db = Database(db_url, lock_timeout_ms=1234)
    try:
        for transaction in (db.read, db.write):
            with transaction() as conn:
                if db.dialect == "sqlite":
                    assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1234
                else:
                    assert conn.exec_driver_sql("SHOW lock_timeout").scalar() == "1234ms"
    finally:
        db.dispose()


def test_a_held_lock_turns_into_a_conflict(db_url: str, db: Database) -> None:
    """While another connection holds the write lock (SQLite) or the audit head (PostgreSQL),
    an append gives up after its bounded wait with Conflict; nothing is written."""
    raw = Raw(db)
    impatient = Database(db_url, lock_timeout_ms=200)
    try:
        raw.execute("BEGIN IMMEDIATE" if db.dialect == "sqlite" else "BEGIN")
        if db.dialect == "postgresql":
            raw.execute("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE")
        with pytest.raises(Conflict, match="busy"):
            append(impatient, fields(1))
        raw.execute("ROLLBACK")
        assert append(impatient, fields(2))[0]["seq"] == 1
    finally:
        raw.close()
        impatient.dispose()
