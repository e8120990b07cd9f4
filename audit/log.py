"""Appending to the chain inside the caller's transaction, and querying the log."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from audit.chain import FIELDS, entry_hash, evidence_text
from audit.tables import ENTRY, HEAD


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_HEAD_FOR_UPDATE = sa.select(HEAD.c.seq, HEAD.c.hash).where(HEAD.c.id == 1).with_for_update()
_HEAD = sa.select(HEAD.c.seq, HEAD.c.hash).where(HEAD.c.id == 1)
_INSERT = ENTRY.insert()
_MOVE_HEAD = HEAD.update().where(HEAD.c.id == 1)
# PostgreSQL: the insert and the head's move in one statement (one round trip), the head already
# locked by _HEAD_FOR_UPDATE; the head takes the new entry's ``seq`` and ``hash`` parameters
_INSERT_AND_MOVE_HEAD = (
    HEAD.update()
    .where(HEAD.c.id == 1)
    .values(seq=sa.bindparam("seq"), hash=sa.bindparam("hash"))
    .add_cte(ENTRY.insert().values({c.name: sa.bindparam(c.name) for c in ENTRY.c}).cte("entry"))
)


class AuditLog:
    """Appends entries to the chain; ``clock`` returns the UTC ISO 8601 time of an entry."""

    def __init__(self, *, dialect: str, clock: Callable[[], str] = utc_now) -> None:
        self._head = _HEAD_FOR_UPDATE if dialect == "postgresql" else _HEAD
        self._combined = dialect == "postgresql"
        self._clock = clock

    def append(self, conn: Connection, fields: dict[str, Any]) -> dict[str, Any]:
        """Append one entry in the caller's (serialised) transaction and return its wire form.

        ``fields`` holds the entry's subject, actor, action and outcome; ``seq``,
        ``recorded_at``, ``prev_hash`` and ``hash`` are filled in here.
        """
        head = conn.execute(self._head).one()
        entry: dict[str, Any] = {key: None for key in FIELDS[:-1]}
        entry.update(fields)
        entry["seq"] = head.seq + 1
        entry["recorded_at"] = self._clock()
        entry["prev_hash"] = head.hash
        entry["evidence"] = fields.get("evidence") or {}
        entry["hash"] = entry_hash(entry)
        row = {**entry, "evidence": evidence_text(entry["evidence"])}
        if self._combined:
            conn.execute(_INSERT_AND_MOVE_HEAD, row)
        else:
            conn.execute(_INSERT, row)
            conn.execute(_MOVE_HEAD, {"seq": entry["seq"], "hash": entry["hash"]})
        return entry


@dataclass(frozen=True, slots=True)
class Filters:
    """Audit log filters of spec/cli.md; ``since``/``until`` are UTC ISO strings."""

    workflow_id: int | None = None
    invoice_id: int | None = None
    project_id: int | None = None
    actor_login: str | None = None
    action: str | None = None
    outcome: str | None = None
    since: str | None = None
    until: str | None = None

    def clauses(self) -> list[Any]:
        c = ENTRY.c
        pairs = [
            (c.workflow_id, self.workflow_id),
            (c.invoice_id, self.invoice_id),
            (c.project_id, self.project_id),
            (c.actor_login, self.actor_login),
            (c.action, self.action),
            (c.outcome, self.outcome),
        ]
        clauses = [column == value for column, value in pairs if value is not None]
        if self.since is not None:
            clauses.append(c.recorded_at >= self.since)
        if self.until is not None:
            clauses.append(c.recorded_at < self.until)
        return clauses


_COLUMNS = tuple(ENTRY.c[name] for name in FIELDS)
_BY_TIME = (ENTRY.c.recorded_at, ENTRY.c.seq)


def rows(
    conn: Connection,
    filters: Filters,
    *,
    limit: int | None = None,
    newest_first: bool = False,
    batch: int = 5_000,
) -> Generator[tuple[Any, ...], None, None]:
    """Stored rows matching ``filters`` as tuples in :data:`FIELDS` order (``evidence`` still
    JSON text), oldest first or newest first: in seq order, or with a time window in
    ``recorded_at`` order, seq breaking ties (the same order unless a clock stepped back; it
    lets both databases walk the ``recorded_at`` index instead of scanning by seq).

    Streamed: SQLite steps its cursor, PostgreSQL reads through a server-side cursor; either
    way ``batch`` rows at a time are held, however long the log. Close the iterator (or
    exhaust it) before the transaction ends.
    """
    statement = sa.select(*_COLUMNS).where(*filters.clauses())
    keys = (ENTRY.c.seq,) if filters.since is None and filters.until is None else _BY_TIME
    statement = statement.order_by(*(key.desc() if newest_first else key for key in keys))
    if limit is not None:
        statement = statement.limit(limit)
    result = conn.execution_options(stream_results=True, yield_per=batch).execute(statement)
    try:
        for partition in result.partitions():
            yield from partition
    finally:
        result.close()


def query(
    conn: Connection,
    filters: Filters,
    *,
    limit: int | None = None,
    newest_first: bool = False,
    batch: int = 5_000,
) -> Iterator[dict[str, Any]]:
    """Entries matching ``filters`` in seq order (or newest first), streamed in batches."""
    loads = json.loads
    fields = FIELDS
    for row in rows(conn, filters, limit=limit, newest_first=newest_first, batch=batch):
        entry = dict(zip(fields, row, strict=True))
        entry["evidence"] = loads(entry["evidence"])
        yield entry


def head(conn: Connection, *, for_update: bool = False) -> dict[str, Any]:
    """The head row: this log's random ``log_id`` and the ``seq`` and ``hash`` of its last entry
    (``for_update``: locked until the transaction ends, as appends lock it, on PostgreSQL)."""
    statement = sa.select(HEAD).where(HEAD.c.id == 1)
    if for_update and conn.dialect.name == "postgresql":
        statement = statement.with_for_update()
    row = conn.execute(statement).one()
    return {"log_id": row.log_id, "seq": row.seq, "hash": row.hash}


def hash_at(conn: Connection, seq: int) -> str | None:
    """The stored hash of entry ``seq``, or None when there is no such entry."""
    found = conn.execute(sa.select(ENTRY.c.hash).where(ENTRY.c.seq == seq)).scalar()
    return None if found is None else str(found)
