"""The owner and lease of a step in flight: who holds it (login, host, process) and until when.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = (
    ("in_flight_owner", sa.String(255)),
    ("in_flight_host", sa.String(255)),
    ("in_flight_pid", sa.Integer()),
    ("in_flight_lease_until", sa.String(32)),
)


def upgrade() -> None:
    # Steps left in flight by an older relink have no lease: resume may settle them at once.
    with op.batch_alter_table("workflow") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workflow") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
