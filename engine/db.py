"""The database: connection set-up per backend, schema version checks, write transactions.

SQLite runs in WAL mode; a write transaction starts with ``BEGIN IMMEDIATE`` so one writer at a
time extends the audit chain, waiting at most ``busy_timeout`` for the lock. On PostgreSQL every
connection bounds its lock waits (``lock_timeout``, set once per connection, not per
transaction); appends serialise on the audit head row. Either way contention becomes
:class:`engine.errors.Conflict` (exit 4).

PostgreSQL pool: a CLI process uses one connection at a time, a batch a few; up to 5 are kept
(plus 5 overflow), a checkout waits at most 10 s, connections are recycled after 30 minutes
(no pre-ping: it would cost a round trip per transaction), connecting gives up after 10 s.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from audit.errors import AuditError
from engine.errors import (
    Conflict,
    EngineError,
    IntegrityError,
    SchemaMismatch,
    StorageError,
    Unavailable,
    UsageError,
)

SCHEMA_REVISION = "0005"
MIGRATIONS = Path(__file__).parent / "migrations"
LOCK_TIMEOUT_MS = 5000  # the longest wait for another operator's lock, both backends
BUSY = "the database is busy with another operator's step; try again"


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` for psycopg 3; check SQLite paths."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise UsageError(f"invalid database URL: {redact(url)}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername not in ("sqlite", "postgresql+psycopg", "sqlite+pysqlite"):
        raise UsageError(
            f"unsupported database {parsed.drivername!r}: use sqlite:///PATH or postgresql://..."
        )
    if parsed.drivername.startswith("sqlite") and _in_memory(parsed.database, parsed.query):
        raise UsageError(
            "an in-memory SQLite database would lose the audit log when relink exits:"
            " use sqlite:///PATH to a file"
        )
    return parsed.render_as_string(hide_password=False)


def _in_memory(database: str | None, query: Any) -> bool:
    """``sqlite://``, ``sqlite:///:memory:`` and the URI forms (``file::memory:``,
    ``mode=memory``) all name a database that vanishes with the process."""
    name = database or ""
    return (
        name in ("", ":memory:")
        or name.startswith(("file::memory:", "file:?", ":memory:?"))
        or query.get("mode") == "memory"
        or "mode=memory" in name
    )


# SQLite's primary result codes (https://sqlite.org/rescode.html) relink maps
SQLITE_PERM, SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY = 3, 5, 6, 8
SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_CANTOPEN, SQLITE_FULL, SQLITE_NOTADB = 10, 11, 14, 13, 26


def sqlite_error(code: int | None, where: str) -> EngineError | None:
    """The engine error an SQLite result code stands for, or None when relink does not map it."""
    if code is None:
        return None
    primary = code & 0xFF  # extended codes carry the primary one in their low byte
    if primary in (SQLITE_BUSY, SQLITE_LOCKED):
        return Conflict(BUSY)
    if primary in (SQLITE_READONLY, SQLITE_PERM):
        return StorageError(
            f"the database {where} is read-only: relink must be able to write the file and"
            " its folder"
        )
    if primary == SQLITE_NOTADB:
        return StorageError(f"{where} is not an SQLite database: check --db/RELINK_DATABASE_URL")
    if primary == SQLITE_CORRUPT:
        return StorageError(f"the database {where} is damaged: restore it from a backup")
    if primary == SQLITE_CANTOPEN:
        return StorageError(f"cannot open the database file of {where}")
    if primary == SQLITE_FULL:
        return StorageError(f"the disk holding the database {where} is full")
    if primary == SQLITE_IOERR:
        return StorageError(f"the database {where} could not be read or written (I/O error)")
    return None


def sqlstate_error(state: str | None, where: str) -> EngineError | None:
    """The engine error a PostgreSQL SQLSTATE stands for, or None when relink does not map it.

    Decided by the code, never by the (localised) message text."""
    if not state:
        return None
    if state in ("40001", "40P01"):  # serialization_failure, deadlock_detected
        return Conflict("another operator's step collided with this one; try again")
    if state == "55P03":  # lock_not_available (lock_timeout)
        return Conflict(BUSY)
    if state == "3D000":  # invalid_catalog_name
        return StorageError(f"the database of {where} does not exist: create it, then run"
                            " `relink init`")
    if state.startswith("28"):  # invalid_authorization_specification, invalid_password
        return StorageError(f"the database server refused the login of {where}: check the user"
                            " and its password")
    if state == "25006":  # read_only_sql_transaction
        return StorageError(f"the database {where} is read-only")
    if state == "53100":  # disk_full
        return StorageError(f"the disk holding the database {where} is full")
    if state.startswith("08") or state in ("57P01", "57P02", "57P03", "53300"):
        # connection_exception, admin/crash shutdown, cannot_connect_now, too_many_connections
        return Unavailable(f"cannot reach the database {where}; try again")
    return None


def redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable URL>"


class Database:
    """One database (SQLite file or PostgreSQL) and how relink talks to it."""

    def __init__(self, url: str, *, lock_timeout_ms: int | None = None) -> None:
        self.url = normalise_url(url)
        self.lock_timeout_ms = LOCK_TIMEOUT_MS if lock_timeout_ms is None else lock_timeout_ms
        parsed = make_url(self.url)
        self.dialect = "sqlite" if parsed.drivername.startswith("sqlite") else "postgresql"
        if self.dialect == "sqlite":
            self.engine = self._sqlite_engine()
        else:
            self.engine = self._postgres_engine()

    def _postgres_engine(self) -> Engine:
        engine = sa.create_engine(
            self.url,
            pool_size=5,
            max_overflow=5,
            pool_timeout=10,
            pool_recycle=1800,
            pool_pre_ping=False,
            connect_args={"connect_timeout": 10, "application_name": "relink"},
        )
        lock_timeout = int(self.lock_timeout_ms)

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            with dbapi_connection.cursor() as cursor:
                cursor.execute(f"SET lock_timeout = {lock_timeout}")
            dbapi_connection.commit()

        return engine

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file (None for PostgreSQL and for ``file:`` URIs)."""
        if self.dialect != "sqlite":
            return None
        path = make_url(self.url).database
        return Path(path).expanduser() if path and not path.startswith("file:") else None

    def require_file(self) -> None:
        """A missing SQLite file is exit 5 (a mistyped path must not become a new, empty
        database that verifies as \"OK: 0 entries\")."""
        path = self.sqlite_path
        if path is not None and not path.exists():
            raise StorageError(f"no database at {path}: run `relink init` to create it")

    def create_file(self, *, default_location: bool) -> None:
        """Create a missing SQLite file, mode 0600 (it holds audit evidence). Its folder is
        created (0700) only when it is relink's default data folder; a folder missing from a
        path the user gave is a usage error (a typo, most likely)."""
        path = self.sqlite_path
        if path is None or path.exists():
            return
        if not path.parent.is_dir():
            if not default_location:
                raise UsageError(
                    f"the folder {path.parent} does not exist: create it, or check the path"
                )
            try:
                path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:
                raise UsageError(f"cannot create the data folder {path.parent}: {exc}") from exc
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            pass
        except OSError as exc:
            raise StorageError(f"cannot create the database file {path}: {exc}") from exc

    def _sqlite_engine(self) -> Engine:
        busy_timeout = int(self.lock_timeout_ms)
        engine = sa.create_engine(self.url, connect_args={"timeout": busy_timeout / 1000})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={busy_timeout}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection: Connection) -> None:
            options = connection.get_execution_options()
            if options.get("relink_single", False):
                return  # one statement is a transaction of its own
            write = options.get("relink_write", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    # transactions --------------------------------------------------------------------------

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A serialised write transaction, committed on success, rolled back on any error."""
        with self._translated(), self.engine.connect() as conn:
            conn = conn.execution_options(relink_write=True)
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def read(self, *, single: bool = False) -> Iterator[Connection]:
        """A read transaction. ``single``: for ONE statement, which then runs as a transaction
        of its own, without BEGIN/COMMIT around it (one round trip on PostgreSQL)."""
        with self._translated(), self.engine.connect() as conn:
            if single:
                conn = conn.execution_options(
                    relink_single=True,
                    **({"isolation_level": "AUTOCOMMIT"} if self.dialect == "postgresql" else {}),
                )
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except AuditError as exc:  # a corrupt audit entry or a missing head, met on the way
            raise IntegrityError(f"{exc}; run `relink audit verify`") from exc
        except DBAPIError as exc:
            known = self._known_failure(exc)
            if known is not None:
                raise known from exc
            text = str(exc.orig).lower()
            if isinstance(exc, OperationalError):
                if "locked" in text or "lock timeout" in text or "busy" in text:
                    raise Conflict(BUSY) from exc
                if "could not connect" in text or ("connection" in text and "refused" in text):
                    raise Unavailable(f"cannot reach the database {redact(self.url)}") from exc
                raise
            if "lock timeout" in text or "could not obtain lock" in text:
                raise Conflict(BUSY) from exc
            if "deadlock" in text or "could not serialize" in text:
                raise Conflict("another operator's step collided with this one; try again") from exc
            raise

    def _known_failure(self, exc: DBAPIError) -> EngineError | None:
        """The engine error for a failure the driver identifies by code (SQLite's result code,
        PostgreSQL's SQLSTATE), or None. libpq reports no SQLSTATE when the connection itself
        fails (no such database or role, refused login, server down): those are exit 3 with the
        server's own words."""
        where = redact(self.url)
        if self.dialect == "sqlite":
            return sqlite_error(getattr(exc.orig, "sqlite_errorcode", None), where)
        state = getattr(exc.orig, "sqlstate", None)
        if state:
            return sqlstate_error(state, where)
        if exc.statement is None:  # raised while connecting, before any statement
            reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else ""
            return Unavailable(f"cannot connect to the database {where} ({reason[:300]})")
        return None

    # schema --------------------------------------------------------------------------------

    def revision(self) -> str | None:
        """The schema revision the database is at, or None when it has no relink schema."""
        with self._translated(), self.engine.connect() as conn:
            try:  # one query, no reflection: this runs on every command's start-up path
                return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            except (OperationalError, ProgrammingError) as exc:
                if "alembic_version" in str(exc.orig):
                    return None  # no such table: no relink schema
                raise

    def check_schema(self, *, create_if_empty: bool = False) -> None:
        """Raise SchemaMismatch (exit 5) unless the schema is at SCHEMA_REVISION.

        An empty SQLite file is initialised on first use when ``create_if_empty`` is set.
        """
        current = self.revision()
        if current == SCHEMA_REVISION:
            return
        if current is None and create_if_empty and self.dialect == "sqlite":
            self.upgrade()
            return
        if current is None:
            raise SchemaMismatch(
                f"the database {redact(self.url)} has no relink schema: run `relink init`"
            )
        if current < SCHEMA_REVISION:
            raise SchemaMismatch(
                f"the database schema is at {current}, this relink needs {SCHEMA_REVISION}:"
                " run `relink init` to upgrade it"
            )
        raise SchemaMismatch(
            f"the database schema is at {current}, newer than this relink ({SCHEMA_REVISION}):"
            " upgrade relink"
        )

    def upgrade(self) -> tuple[str | None, str]:
        """Create or upgrade the schema with the migrations; returns (before, after)."""
        from alembic import command
        from alembic.config import Config
        from alembic.util.exc import CommandError

        before = self.revision()
        if before is not None and before > SCHEMA_REVISION:
            raise SchemaMismatch(
                f"the database schema is at {before}, newer than this relink ({SCHEMA_REVISION})"
            )
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self._translated(), self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn = conn.execution_options(relink_write=True)
            config.attributes["connection"] = conn
            try:
                command.upgrade(config, "head")
            except CommandError as exc:  # a revision none of our migrations knows
                raise SchemaMismatch(
                    f"the database schema is at {before}, a revision this relink does not know"
                    f" ({SCHEMA_REVISION} is its own): upgrade relink, or restore the database"
                ) from exc
            if conn.in_transaction():
                conn.commit()
        return before, SCHEMA_REVISION

    def dispose(self) -> None:
        self.engine.dispose()

    close = dispose
