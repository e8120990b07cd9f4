"""Workflow instances, the audit log, its head row and append-only triggers.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

SQLITE_TRIGGERS = [
    """CREATE TRIGGER audit_entry_no_update BEFORE UPDATE ON audit_entry
       BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only'); END""",
    """CREATE TRIGGER audit_entry_no_delete BEFORE DELETE ON audit_entry
       BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only'); END""",
]
POSTGRES_TRIGGERS = [
    """CREATE FUNCTION relink_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'audit_entry is append-only'; END $$""",
    """CREATE TRIGGER audit_entry_no_update_delete BEFORE UPDATE OR DELETE ON audit_entry
       FOR EACH ROW EXECUTE FUNCTION relink_audit_append_only()""",
    """CREATE TRIGGER audit_entry_no_truncate BEFORE TRUNCATE ON audit_entry
       FOR EACH STATEMENT EXECUTE FUNCTION relink_audit_append_only()""",
]


def upgrade() -> None:
    op.create_table(
        "workflow",
        sa.Column("id", BIG, primary_key=True, autoincrement=True),
        sa.Column("workflow", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("state", sa.String(50), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("company_id", sa.BigInteger, nullable=False),
        sa.Column("project_id", sa.BigInteger, nullable=False),
        sa.Column("invoice_id", sa.BigInteger, nullable=False),
        sa.Column("open_invoice_id", sa.BigInteger),
        sa.Column("erp", sa.String(50), nullable=False),
        sa.Column("erp_key", sa.String(20), nullable=False),
        sa.Column("erp_bill_id", sa.String(100)),
        sa.Column("reason", sa.Text),
        sa.Column("snapshot", sa.Text, nullable=False),
        sa.Column("new_invoice_id", sa.BigInteger),
        sa.Column("after", sa.Text),
        sa.Column("in_flight_step", sa.String(50)),
        sa.Column("in_flight_to", sa.String(50)),
        sa.Column("in_flight_key", sa.String(64)),
        sa.Column("in_flight_since", sa.String(32)),
        sa.Column("in_flight_data", sa.Text),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
        sa.UniqueConstraint("company_id", "open_invoice_id", name="uq_workflow_open_invoice"),
    )
    op.create_index("ix_workflow_state", "workflow", ["state"])
    op.create_index("ix_workflow_project", "workflow", ["project_id"])
    op.create_index("ix_workflow_invoice", "workflow", ["invoice_id"])

    op.create_table(
        "audit_entry",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("recorded_at", sa.String(32), nullable=False),
        sa.Column("workflow_id", sa.BigInteger),
        sa.Column("workflow", sa.String(100), nullable=False),
        sa.Column("workflow_version", sa.Integer, nullable=False),
        sa.Column("company_id", sa.BigInteger),
        sa.Column("project_id", sa.BigInteger),
        sa.Column("invoice_id", sa.BigInteger),
        sa.Column("erp_bill_id", sa.String(100)),
        sa.Column("actor_id", sa.BigInteger),
        sa.Column("actor_login", sa.String(255)),
        sa.Column("actor_name", sa.String(255)),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("from_state", sa.String(50)),
        sa.Column("to_state", sa.String(50)),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    for name, columns in {
        "ix_audit_invoice_seq": ["invoice_id", "seq"],
        "ix_audit_project_seq": ["project_id", "seq"],
        "ix_audit_actor_seq": ["actor_login", "seq"],
        "ix_audit_workflow_seq": ["workflow_id", "seq"],
        "ix_audit_recorded_at": ["recorded_at"],
    }.items():
        op.create_index(name, "audit_entry", columns)

    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("log_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "log_id": secrets.token_hex(16), "seq": 0, "hash": "0" * 64}])

    dialect = op.get_bind().dialect.name
    for statement in SQLITE_TRIGGERS if dialect == "sqlite" else POSTGRES_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_entry_no_truncate ON audit_entry")
        op.execute("DROP TRIGGER IF EXISTS audit_entry_no_update_delete ON audit_entry")
        op.execute("DROP FUNCTION IF EXISTS relink_audit_append_only()")
    op.drop_table("audit_head")
    op.drop_table("audit_entry")
    op.drop_table("workflow")
