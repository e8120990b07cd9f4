"""A database made by the last release (schema 0003) upgrades with `relink init`, keeps working,
and its audit chain still verifies, old and new entries alike.

tests/data/release-0003.*.sql were written by relink at commit d05b604 (the release before the
generic engine) against its own sandbox: `relink init`, invoice 9001 corrected end to end (an
out-of-order unlink refused on the way), then invoice 9002 started and left open — 11 audit
entries of format 1. The SQLite file is its `.dump`, the PostgreSQL schema its `pg_dump --inserts`.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.db import SCHEMA_REVISION
from tests.conftest import BACKENDS, POSTGRES_URL, Relink, Sandbox, postgres_schema_url
from tests.test_audit_chain import independent_verify

DATA = Path(__file__).parent / "data"
RELEASED_SCHEMA = "relink_release_0003"


@pytest.fixture(name="released", params=BACKENDS)
def fixture_released(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The released database, restored into a fresh SQLite file or PostgreSQL schema."""
    if request.param == "sqlite":
        path = tmp_path / "released.db"
        with sqlite3.connect(path) as conn:
            conn.executescript((DATA / "release-0003.sqlite.sql").read_text())
        yield f"sqlite:///{path}"
        return
    if not POSTGRES_URL:
        pytest.skip("RELINK_TEST_POSTGRES_URL is not set")
    schema = f"relink_t_{secrets.token_hex(6)}"
    script = (DATA / "release-0003.postgres.sql").read_text().replace(RELEASED_SCHEMA, schema)
    admin = sa.create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(script)
        yield postgres_schema_url(POSTGRES_URL, schema)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()


def test_a_released_database_upgrades_and_keeps_working(
    released: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    relink = Relink(released, sandbox.env)
    code, doc = relink.json("show", "1")
    assert code == 5 and "relink init" in doc["error"]  # the old schema asks for an upgrade
    code, doc = relink.json("init")
    assert (code, doc["from"], doc["to"]) == (0, "0003", SCHEMA_REVISION), doc

    # the released correction reads as it was, with its subject
    code, done = relink.json("show", "1")
    assert code == 0, done
    assert (done["state"], done["subject_type"], done["subject_id"]) == (
        "Reentered", "requisition", "9001")
    assert (done["invoice_id"], done["erp_bill_id"], done["new_invoice_id"]) == (
        9001, "183", 9900000000)
    assert [e["action"] for e in done["history"]] == [
        "start", "unlink", "delete-in-erp", "delete-in-erp", "unlink", "unlink",
        "delete-in-procore", "delete-in-procore", "reenter", "reenter"]
    assert all("format" not in entry for entry in done["history"])
    assert relink.json("audit", "verify")[1]["entries"] == 11

    # its open correction is still the one open correction of invoice 9002, and runs on
    code, doc = relink.json("start", "9002", "--project", "101", "--reason", "again")
    assert code == 1 and "already has an open correction #2" in doc["message"], doc
    code, doc = relink.json("advance", "2", "cancel", "--reason", "upgraded")
    assert (code, doc["state"]) == (0, "Cancelled"), doc
    code, doc = relink.json("start", "9002", "--project", "101", "--reason", "after the upgrade")
    assert (code, doc["state"], doc["id"]) == (0, "Exported", 3), doc

    # old entries as written (format 1), new ones in format 2, one chain
    entries = relink.json("audit", "log", "--format", "json")[1]["entries"]
    assert [e.get("format") for e in entries] == [None] * 11 + [2, 2, 2]
    assert {(e["subject_type"], e["subject_id"]) for e in entries[11:]} == {
        ("requisition", "9002")}
    code, verified = relink.json("audit", "verify")
    assert (code, verified["entries"]) == (0, 14), verified
    out = tmp_path / "log.jsonl"
    assert relink("audit", "export", "--format", "jsonl", "--out", str(out)).exit_code == 0
    lines = out.read_text().splitlines()
    assert independent_verify(lines) == (14, verified["head_hash"])
    assert '"format"' not in lines[0] and '"format":2' in lines[-1]
