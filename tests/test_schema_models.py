"""One schema definition: the SQLModel tables are what the Alembic migrations build, on both
backends (autogenerate finds nothing to add, drop or alter)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import audit.tables  # noqa: F401  (registers the audit tables on SQLModel.metadata)
import engine.tables  # noqa: F401
from engine.db import Database


def differences(db_url: str, metadata: sa.MetaData) -> list[Any]:
    db = Database(db_url)
    try:
        with db.engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            return list(compare_metadata(context, metadata))
    finally:
        db.dispose()


def test_the_models_match_the_migrations(db_url: str) -> None:
    assert differences(db_url, SQLModel.metadata) == []


def test_a_model_the_migrations_lack_is_found(db_url: str) -> None:
    """The comparison sees a difference when there is one (a column the migrations never made)."""
    changed = sa.MetaData()
    for table in SQLModel.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["workflow"].append_column(sa.Column("not_migrated", sa.Integer()))
    found = differences(db_url, changed)
    assert [(d[0], d[3].name) for d in found] == [("add_column", "not_migrated")]
