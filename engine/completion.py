"""What shell completion offers: the corrections' ids and the steps a correction may take next.

A completion runs at every Tab press, so it reads quickly and never writes: SQLite through the
standard library's driver, opened read-only (``mode=ro``: a missing file is not created),
PostgreSQL through psycopg in a read-only transaction with a short connect timeout. It never fails:
no database, no schema, a server that does not answer or any other trouble completes nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

CONNECT_TIMEOUT = 2  # seconds, PostgreSQL
MOST = 200  # ids offered, newest first

_COLUMNS = "id, workflow, version, state, subject_type, subject_id, in_flight_step"


def correction_ids(database_url: str) -> list[tuple[str, str]]:
    """The newest corrections' ids, each with a word on it: its state, subject type and id."""
    rows = _rows(database_url, f"SELECT {_COLUMNS} FROM workflow ORDER BY id DESC LIMIT {MOST}")
    found = []
    for wid, _workflow, _version, state, subject_type, subject_id, in_flight in rows:
        doing = f", {in_flight} in flight" if in_flight else ""
        found.append((str(wid), f"{state}{doing}: {subject_type} {subject_id}"))
    return found


def next_steps(database_url: str, workflow_id: int) -> list[str]:
    """The steps correction ``workflow_id`` may take next (as ``relink show`` lists them);
    none while a step is in flight (``relink resume`` settles it first)."""
    rows = _rows(database_url, f"SELECT {_COLUMNS} FROM workflow WHERE id = {int(workflow_id)}")
    if len(rows) != 1:
        return []
    _wid, workflow, version, state, _type, _subject, in_flight = rows[0]
    if in_flight:
        return []
    from workflows import registry

    try:
        definition = registry.running(str(workflow), int(version))
    except Exception:  # an unknown or broken definition completes nothing
        return []
    return [step.name for step in definition.steps
            if not step.way_out and str(state) in step.sources]


def _rows(database_url: str, query: str) -> list[tuple[Any, ...]]:
    """The rows of ``query``, or none whatever goes wrong."""
    try:
        with _connection(database_url) as conn:
            if conn is None:
                return []
            cursor = conn.cursor()
            cursor.execute(query)
            return [tuple(row) for row in cursor.fetchall()]
    except Exception:  # completion never fails: it offers nothing
        return []


@contextlib.contextmanager
def _connection(database_url: str) -> Iterator[Any]:
    """A read-only connection, or None for a URL it does not know."""
    scheme, _, rest = database_url.partition("://")
    dialect = scheme.split("+", 1)[0]
    if dialect == "sqlite":
        import sqlite3

        path = rest[1:].split("?", 1)[0] if rest.startswith("/") else ""
        if not path:
            yield None
            return
        lite = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=1)
        try:
            yield lite
        finally:
            lite.close()
    elif dialect in ("postgresql", "postgres"):
        import psycopg

        with psycopg.connect(f"postgresql://{rest}", connect_timeout=CONNECT_TIMEOUT) as pg:
            pg.read_only = True
            yield pg
    else:
        yield None
