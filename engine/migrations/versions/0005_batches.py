"""Batches: many corrections driven at once, and plans (a correction with the later subjects it
must unwind first). A batch row and one item per subject; workers claim items under a lease
(``claimed_*``), a plan's runner claims the batch row itself.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _claim_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("claimed_by", sa.String(255)),
        sa.Column("claimed_host", sa.String(255)),
        sa.Column("claimed_pid", sa.Integer()),
        sa.Column("claimed_until", sa.String(32)),
    ]


def upgrade() -> None:
    op.create_table(
        "batch",
        sa.Column("id", BIG, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("workflow", sa.String(100), nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("project_id", sa.BigInteger()),
        sa.Column("subject_id", sa.String(100)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(255)),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        *_claim_columns(),
    )
    op.create_table(
        "batch_item",
        sa.Column("id", BIG, primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.String(100)),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("label", sa.String(255)),
        sa.Column("role", sa.String(20)),
        sa.Column("reason", sa.Text()),
        sa.Column("data", sa.Text()),
        sa.Column("workflow_id", sa.BigInteger()),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("outcome", sa.String(20)),
        sa.Column("message", sa.Text()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        *_claim_columns(),
        sa.UniqueConstraint("batch_id", "position", name="uq_batch_item_position"),
    )
    op.create_index("ix_batch_item_status", "batch_item", ["batch_id", "status"])
    op.create_index("ix_batch_item_claim", "batch_item", ["claimed_host", "claimed_until"])


def downgrade() -> None:  # pragma: no cover - relink never downgrades; kept for Alembic's sake
    raise NotImplementedError("relink's schema only moves forward")
