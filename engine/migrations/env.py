"""Alembic environment: relink always hands over an open connection (see engine/db.py)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import audit.tables
import engine.tables

assert audit.tables and engine.tables  # imported for their tables
connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
