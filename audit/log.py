"""Appending to the chain inside the caller's transaction, and querying the log.

Entries come back in their wire form (:mod:`audit.chain`): format-1 entries with the keys of
:data:`~audit.chain.FIELDS` only, format-2 entries with those of :data:`~audit.chain.FIELDS_2`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from audit.chain import (
    COLUMNS,
    FIELDS,
    FIELDS_2,
    FORMAT_2,
    EvidenceError,
    FormatError,
    entry_from_row,
    evidence_text,
    row_hash,
)
from audit.errors import ChainBroken, HeadMissing
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
        ``recorded_at``, ``prev_hash`` and ``hash`` are filled in here. With ``"format": 2``
        the entry is format 2 (``subject_type`` and ``subject_id`` strings, or null); without
        ``format`` (or with it null) it is format 1 and may not carry a subject. ValueError for
        any other format, a key outside spec/audit.md or a subject that is not a string: such
        an entry could not be stored as it is hashed.
        """
        keys = _wire_keys(fields)
        head = conn.execute(self._head).first()
        if head is None:
            raise HeadMissing()
        entry: dict[str, Any] = {key: fields.get(key) for key in keys[:-1]}
        entry["seq"] = head.seq + 1
        entry["recorded_at"] = self._clock()
        entry["prev_hash"] = head.hash
        entry["evidence"] = fields.get("evidence") or {}
        row = _EMPTY_ROW | entry
        row["evidence"] = text = evidence_text(entry["evidence"])
        # the evidence is encoded once: the hash splices its stored text, as verify does
        entry["hash"] = row["hash"] = row_hash(tuple(row[column] for column in COLUMNS), text)
        if self._combined:
            conn.execute(_INSERT_AND_MOVE_HEAD, row)
        else:
            conn.execute(_INSERT, row)
            conn.execute(_MOVE_HEAD, {"seq": entry["seq"], "hash": entry["hash"]})
        return entry


_EMPTY_ROW = dict.fromkeys(COLUMNS)
_APPENDABLE = frozenset(FIELDS_2)
_SUBJECT = ("subject_type", "subject_id")


def _wire_keys(fields: dict[str, Any]) -> tuple[str, ...]:
    """The wire keys of the entry ``fields`` make (FIELDS or FIELDS_2); ValueError if none."""
    unknown = fields.keys() - _APPENDABLE
    if unknown:
        raise ValueError(f"audit entries have no field {', '.join(sorted(unknown))}"
                         " (spec/audit.md)")
    found = fields.get("format")
    if found is None:
        carried = [key for key in _SUBJECT if fields.get(key) is not None]
        if carried:
            raise ValueError(f"{', '.join(carried)} needs \"format\": {FORMAT_2}")
        return FIELDS
    if type(found) is not int or found != FORMAT_2:
        raise ValueError(f"unknown audit entry format {found!r} (this relink writes"
                         f" {FORMAT_2})")
    for key in _SUBJECT:
        if not isinstance(fields.get(key), str | None):
            raise ValueError(f"{key} must be a string, not {type(fields[key]).__name__}")
    return FIELDS_2


@dataclass(frozen=True, slots=True)
class Filters:
    """Audit log filters of spec/cli.md; ``since``/``until`` are UTC ISO strings.
    ``subject_type`` and ``subject_id`` match format-2 entries only (format-1 entries have
    none: their subject is ``invoice_id``). ``after_seq`` and ``through_seq`` bound ``seq``
    (``after_seq < seq <= through_seq``): a part of the log, as verification reads it."""

    workflow_id: int | None = None
    invoice_id: int | None = None
    project_id: int | None = None
    actor_login: str | None = None
    action: str | None = None
    outcome: str | None = None
    since: str | None = None
    until: str | None = None
    subject_type: str | None = None
    subject_id: str | None = None
    after_seq: int | None = None
    through_seq: int | None = None
    # resolved by a reader (engine.reviews) from what an operator typed: the stored logins
    # ``actor_login`` stands for (:func:`logins_like`; matched instead of it), and the
    # corrections whose every entry matches ``invoice_id`` too (they re-entered that invoice)
    actor_logins: tuple[str, ...] | None = None
    produced_by: tuple[int, ...] | None = None

    def clauses(self) -> list[Any]:
        c = ENTRY.c
        pairs = [
            (c.workflow_id, self.workflow_id),
            (c.subject_type, self.subject_type),
            (c.subject_id, self.subject_id),
            (c.project_id, self.project_id),
            (c.action, self.action),
            (c.outcome, self.outcome),
        ]
        if self.actor_logins is None:
            pairs.append((c.actor_login, self.actor_login))
        clauses = [column == value for column, value in pairs if value is not None]
        if self.actor_logins is not None:
            clauses.append(c.actor_login.in_(self.actor_logins))
        if self.invoice_id is not None and self.produced_by:
            clauses.append(sa.or_(c.invoice_id == self.invoice_id,
                                  c.workflow_id.in_(self.produced_by)))
        elif self.invoice_id is not None:
            clauses.append(c.invoice_id == self.invoice_id)
        if self.since is not None:
            clauses.append(c.recorded_at >= self.since)
        if self.until is not None:
            clauses.append(c.recorded_at < self.until)
        if self.after_seq is not None:
            clauses.append(c.seq > self.after_seq)
        if self.through_seq is not None:
            clauses.append(c.seq <= self.through_seq)
        return clauses


_COLUMNS = tuple(ENTRY.c[name] for name in COLUMNS)
_BY_TIME = (ENTRY.c.recorded_at, ENTRY.c.seq)


def rows(
    conn: Connection,
    filters: Filters,
    *,
    limit: int | None = None,
    newest_first: bool = False,
    batch: int = 5_000,
) -> Generator[tuple[Any, ...], None, None]:
    """Stored rows matching ``filters`` as tuples in :data:`~audit.chain.COLUMNS` order
    (``evidence`` still JSON text, the format-2 columns NULL on format-1 rows), oldest first or
    newest first: in seq order, or with a time window in ``recorded_at`` order, seq breaking
    ties (the same order unless a clock stepped back; it lets both databases walk the
    ``recorded_at`` index instead of scanning by seq).

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
    except OperationalError as exc:
        found = _undecodable(conn, filters, exc)
        if found is None:
            raise
        result.close()
        raise ChainBroken(found[0], f"its {found[1]} is not UTF-8 text (the entry was altered)"
                          ) from None
    finally:
        result.close()


_NOT_UTF8 = re.compile(r"Could not decode to UTF-8 column '(\w+)'")


def _undecodable(
    conn: Connection, filters: Filters, exc: OperationalError
) -> tuple[int, str] | None:
    """SQLite holds bytes a TEXT column cannot decode (written outside relink): the first such
    entry's seq and the column, or None when ``exc`` is something else."""
    match = _NOT_UTF8.search(str(exc.orig))
    driver = conn.connection.dbapi_connection
    if match is None or match[1] not in ENTRY.c or driver is None:
        return None
    driver.create_function("relink_is_utf8", 1, _is_utf8, deterministic=True)
    column = sa.cast(ENTRY.c[match[1]], sa.LargeBinary)
    statement = sa.select(sa.func.min(ENTRY.c.seq)).where(
        *filters.clauses(), sa.func.relink_is_utf8(column) == 0
    )
    seq = conn.execute(statement).scalar()
    return None if seq is None else (int(seq), match[1])


def _is_utf8(data: bytes | None) -> int:
    try:
        (data or b"").decode("utf-8")
    except UnicodeDecodeError:
        return 0
    return 1


def query(
    conn: Connection,
    filters: Filters,
    *,
    limit: int | None = None,
    newest_first: bool = False,
    batch: int = 5_000,
) -> Iterator[dict[str, Any]]:
    """Entries matching ``filters`` in their wire form, in seq order (or newest first),
    streamed in batches.

    Raises ChainBroken at an entry whose evidence is not one unambiguous JSON object (not JSON,
    or a key held twice), or that is neither format 1 nor format 2: no reader shows or exports
    one reading of an ambiguous entry.
    """
    for row in rows(conn, filters, limit=limit, newest_first=newest_first, batch=batch):
        try:
            entry = entry_from_row(row)
        except (EvidenceError, FormatError) as exc:
            raise ChainBroken(row[0], str(exc)) from None
        yield entry


def count(conn: Connection, filters: Filters) -> int:
    """How many entries match ``filters``."""
    statement = sa.select(sa.func.count()).select_from(ENTRY).where(*filters.clauses())
    return int(conn.execute(statement).scalar_one())


# Every distinct login with one index seek each (a loose index scan, on SQLite and PostgreSQL
# alike), however many entries each has.
_LOGINS = sa.text(
    "WITH RECURSIVE logins(login) AS ("
    " SELECT MIN(actor_login) FROM audit_entry"
    " UNION ALL"
    " SELECT (SELECT MIN(actor_login) FROM audit_entry WHERE actor_login > logins.login)"
    " FROM logins WHERE logins.login IS NOT NULL"
    ") SELECT login FROM logins WHERE login IS NOT NULL"
)


def logins_like(conn: Connection, actor: str) -> tuple[str, ...]:
    """The stored logins an operator means by ``actor``: the same login in any case, or, for a
    name without ``@``, every login whose local part it is (``ana`` for
    ``Ana@summit.example``)."""
    wanted = actor.casefold()
    found = []
    for (login,) in conn.execute(_LOGINS):
        folded = str(login).casefold()
        if folded == wanted or ("@" not in wanted and folded.split("@")[0] == wanted):
            found.append(str(login))
    return tuple(found)


def head(conn: Connection, *, for_update: bool = False) -> dict[str, Any]:
    """The head row: this log's random ``log_id``, the ``seq`` and ``hash`` of its last entry
    and ``canonical_from``, the first seq stored as JCS (``for_update``: locked until the
    transaction ends, as appends lock it, on PostgreSQL). HeadMissing if the row is gone."""
    statement = sa.select(HEAD).where(HEAD.c.id == 1)
    if for_update and conn.dialect.name == "postgresql":
        statement = statement.with_for_update()
    row = conn.execute(statement).first()
    if row is None:
        raise HeadMissing()
    return {"log_id": row.log_id, "seq": row.seq, "hash": row.hash,
            "canonical_from": row.canonical_from}


def hash_at(conn: Connection, seq: int) -> str | None:
    """The stored hash of entry ``seq``, or None when there is no such entry."""
    found = conn.execute(sa.select(ENTRY.c.hash).where(ENTRY.c.seq == seq)).scalar()
    return None if found is None else str(found)
