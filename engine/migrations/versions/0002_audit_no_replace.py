"""Nothing replaces an audit row; the head only moves forward; evidence is stored canonically.

- SQLite: ``INSERT OR REPLACE`` (and ``REPLACE INTO``) deletes the old row without firing
  ``BEFORE DELETE`` triggers, so a ``BEFORE INSERT`` trigger now aborts an insert whose ``seq``
  is taken. An upsert (``ON CONFLICT DO UPDATE``) is stopped by the same trigger, and by the
  update trigger. PostgreSQL has no REPLACE; its upsert and MERGE fire the row triggers of 0001.
- ``audit_head`` on both: its row is never deleted (nor truncated) and no other row is inserted
  (or replaces it); an update keeps ``id``, ``log_id`` and ``canonical_from`` and never moves
  ``seq`` back.
- ``audit_head.canonical_from``: the first seq whose stored evidence text must be its RFC 8785
  (JCS) encoding. Entries before it were stored by the 0001 writer as sorted compact JSON
  (``json.dumps``), which is JCS except for floats and for keys outside the Basic Multilingual
  Plane; ``relink audit verify`` accepts either encoding for those and JCS alone from here on.
  A new database gets 1; an upgraded one, its head seq + 1.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = [
    """CREATE TRIGGER audit_entry_no_replace BEFORE INSERT ON audit_entry
       WHEN EXISTS (SELECT 1 FROM audit_entry WHERE seq = NEW.seq)
       BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only'); END""",
    """CREATE TRIGGER audit_head_no_insert BEFORE INSERT ON audit_head
       BEGIN SELECT RAISE(ABORT, 'audit_head only moves forward'); END""",
    """CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
       BEGIN SELECT RAISE(ABORT, 'audit_head only moves forward'); END""",
    """CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head
       WHEN NEW.id IS NOT OLD.id OR NEW.log_id IS NOT OLD.log_id
         OR NEW.canonical_from IS NOT OLD.canonical_from OR NEW.seq < OLD.seq
       BEGIN SELECT RAISE(ABORT, 'audit_head only moves forward'); END""",
]
SQLITE_DROP = ["audit_head_forward", "audit_head_no_delete", "audit_head_no_insert",
               "audit_entry_no_replace"]
POSTGRES_TRIGGERS = [
    """CREATE FUNCTION relink_audit_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'audit_head only moves forward'; END $$""",
    """CREATE TRIGGER audit_head_no_insert_delete BEFORE INSERT OR DELETE ON audit_head
       FOR EACH ROW EXECUTE FUNCTION relink_audit_head_forward()""",
    """CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
       FOR EACH STATEMENT EXECUTE FUNCTION relink_audit_head_forward()""",
    """CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head FOR EACH ROW
       WHEN (NEW.id IS DISTINCT FROM OLD.id OR NEW.log_id IS DISTINCT FROM OLD.log_id
             OR NEW.canonical_from IS DISTINCT FROM OLD.canonical_from OR NEW.seq < OLD.seq)
       EXECUTE FUNCTION relink_audit_head_forward()""",
]


def upgrade() -> None:
    op.add_column(
        "audit_head",
        sa.Column("canonical_from", sa.BigInteger, nullable=False, server_default="1"),
    )
    op.execute("UPDATE audit_head SET canonical_from = seq + 1")
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_TRIGGERS if dialect == "sqlite" else POSTGRES_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_head_forward ON audit_head")
        op.execute("DROP TRIGGER IF EXISTS audit_head_no_truncate ON audit_head")
        op.execute("DROP TRIGGER IF EXISTS audit_head_no_insert_delete ON audit_head")
        op.execute("DROP FUNCTION IF EXISTS relink_audit_head_forward()")
    else:
        for name in SQLITE_DROP:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    with op.batch_alter_table("audit_head") as batch:
        batch.drop_column("canonical_from")
