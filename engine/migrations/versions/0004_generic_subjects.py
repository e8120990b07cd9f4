"""Instances of any workflow: a subject (type and id), its remote reference and results as JSON;
audit entries of format 2 carry the subject too.

Every existing instance is an invoice correction: its subject becomes (``requisition``, its
invoice id), its ERP bill id the remote reference, its re-entered invoice the results. The
invoice-only columns go; one open correction per (company, subject type, subject id) replaces one
per invoice. Audit entries are never rewritten: the new columns stay NULL on the entries written
before (format 1), which are hashed, verified and exported exactly as they were written.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NEW = (
    ("subject_type", sa.String(50)),
    ("subject_id", sa.String(100)),
    ("open_subject_id", sa.String(100)),
    ("remote_ref", sa.Text()),
    ("results", sa.Text()),
)
GONE = ("invoice_id", "open_invoice_id", "erp_bill_id", "new_invoice_id", "after")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def upgrade() -> None:
    with op.batch_alter_table("workflow") as batch:
        for name, kind in NEW:
            batch.add_column(sa.Column(name, kind, nullable=True))
    conn = op.get_bind()
    workflow = sa.table(
        "workflow", sa.column("id"), *(sa.column(name) for name, _ in NEW),
        *(sa.column(name) for name in GONE),
    )
    rows = conn.execute(sa.select(workflow.c.id, *(workflow.c[name] for name in GONE))).all()
    for row in rows:
        results: dict[str, Any] = {}
        if row.new_invoice_id is not None:
            results["new_invoice_id"] = row.new_invoice_id
        if row.after is not None:
            results["after"] = json.loads(row.after)
        conn.execute(
            workflow.update().where(workflow.c.id == row.id).values(
                subject_type="requisition",
                subject_id=str(row.invoice_id),
                open_subject_id=None if row.open_invoice_id is None else str(row.open_invoice_id),
                remote_ref=_dumps({"erp_bill_id": row.erp_bill_id}),
                results=_dumps(results),
            )
        )
    with op.batch_alter_table("workflow") as batch:
        batch.drop_constraint("uq_workflow_open_invoice", type_="unique")
        batch.drop_index("ix_workflow_invoice")
        for name in GONE:
            batch.drop_column(name)
        for name, kind in NEW:
            if name != "open_subject_id":
                batch.alter_column(name, existing_type=kind, nullable=False)
        batch.create_unique_constraint(
            "uq_workflow_open_subject", ["company_id", "subject_type", "open_subject_id"]
        )
        batch.create_index("ix_workflow_subject", ["subject_type", "subject_id"])
    # Plain ADD COLUMN (no table copy): the append-only triggers stay, no entry is rewritten.
    op.add_column("audit_entry", sa.Column("format", sa.Integer(), nullable=True))
    op.add_column("audit_entry", sa.Column("subject_type", sa.String(50), nullable=True))
    op.add_column("audit_entry", sa.Column("subject_id", sa.String(100), nullable=True))
    op.create_index("ix_audit_subject_seq", "audit_entry", ["subject_type", "subject_id", "seq"])


def downgrade() -> None:  # pragma: no cover - relink never downgrades; kept for Alembic's sake
    raise NotImplementedError("relink's schema only moves forward")
