"""PostgreSQL with a separate owner (audit/sql/*.sql): the application role appends to the audit
log but cannot UPDATE, DELETE or TRUNCATE it, nor drop or disable its triggers."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote as urlquote
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import sqlalchemy as sa

from audit.roles import GRANTS, ROLES, quote, render
from engine.db import Database
from engine.reviews import AuditService
from engine.store import WorkflowStore
from tests.audit_support import append, correction, postgres_url

pytestmark = pytest.mark.postgres


@dataclass
class Roles:
    owner_url: str
    app_url: str


def as_role(base: str, role: str, password: str) -> str:
    parts = urlsplit(base)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{role}:{urlquote(password)}@{host}"))


@pytest.fixture(name="roles")
def fixture_roles() -> Iterator[Roles]:
    base = postgres_url()
    if base is None:
        pytest.skip("RELINK_TEST_POSTGRES_URL is not set")
    tag = secrets.token_hex(5)
    owner, app, schema = f"relink_owner_{tag}", f"relink_app_{tag}", f"relink_t_{tag}"
    password = secrets.token_urlsafe(12)
    with psycopg.connect(base, autocommit=True) as admin:
        can = admin.execute(
            "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        if not (can and can[0]):
            pytest.skip("the test server's user cannot create roles")
        for statement in render(ROLES, owner=owner, app=app, schema=schema):
            admin.execute(statement)
        for role in (owner, app):
            admin.execute(f"ALTER ROLE {quote(role)} PASSWORD '{password}'")
    try:
        yield Roles(as_role(base, owner, password), as_role(base, app, password))
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA IF EXISTS {quote(schema)} CASCADE")
            for role in (app, owner):
                admin.execute(f"DROP OWNED BY {quote(role)}")
                admin.execute(f"DROP ROLE {quote(role)}")


def init_as_owner(roles: Roles) -> None:
    """`relink init` as the owner, then the grants script as the owner."""
    owner = Database(roles.owner_url)
    owner.upgrade()
    owner.dispose()
    with psycopg.connect(roles.owner_url, autocommit=True) as conn:  # search_path set by ROLES
        current = conn.execute("SELECT current_schema()").fetchone()
        assert current is not None
        app = urlsplit(roles.app_url).username
        assert app is not None
        for statement in render(GRANTS, app=app, schema=current[0]):
            conn.execute(statement)


def test_the_application_role_appends_but_cannot_rewrite(roles: Roles) -> None:
    """Through the app role: corrections and audit appends work; UPDATE, DELETE, TRUNCATE of
    audit_entry and dropping or disabling its triggers are refused; the chain verifies."""
    init_as_owner(roles)
    app = Database(roles.app_url)
    try:
        app.check_schema()
        with app.write() as conn:
            wid = WorkflowStore().insert(conn, {
                "workflow": "subcontractor-invoice", "version": 1, "state": "Exported",
                "company_id": 4021, "project_id": 101, "subject_type": "requisition",
                "subject_id": "9001", "remote_ref": {"erp_bill_id": "183"}, "erp": "qbo",
                "erp_key": "qbo", "reason": "Wrong retainage",
                "snapshot": {"id": 9001}, "created_at": "2026-11-27T18:04:05.000000Z",
                "updated_at": "2026-11-27T18:04:05.000000Z",
            })
            assert WorkflowStore().update(conn, wid, 1, {"state": "Unlinked"})
        append(app, correction(wid, 9001, 101))
        for statement in (
            "UPDATE audit_entry SET reason = 'x' WHERE seq = 1",
            "DELETE FROM audit_entry WHERE seq = 5",
            "TRUNCATE audit_entry",
            "ALTER TABLE audit_entry DISABLE TRIGGER ALL",
            "DROP TRIGGER audit_entry_no_update_delete ON audit_entry",
            "CREATE TABLE audit_entry_copy (seq bigint)",
        ):
            with pytest.raises(sa.exc.ProgrammingError) as caught, app.write() as conn:
                conn.exec_driver_sql(statement)
            assert isinstance(caught.value.orig, psycopg.errors.InsufficientPrivilege), statement
        result = AuditService(app).verify()
        assert (result["entries"], result["head_seq"]) == (5, 5)
    finally:
        app.dispose()
