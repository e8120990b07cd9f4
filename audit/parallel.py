"""Verifying and exporting a long log on every core.

The log up to its head is cut into parts of :data:`PART` seqs, dealt round-robin to worker
processes (``python -m audit.parallel``, one per core): each reads its parts through its own
connection, checks every row against its own hash and, for ``verify``, each row after a part's
first against the row before it (:func:`audit.verify.check_part`); for an export it also writes
the part's lines (:func:`audit.export.export_part`). This process takes the parts in seq order:
it links each to the part before (:func:`audit.verify.link`: the first row's seq and
``prev_hash``), so the first bad seq reported is the one a single pass would report, and writes
the exported lines in order. Entries after the head (there should be none) are read here, in
this transaction.

What the workers read is what this transaction reads: on PostgreSQL they import its snapshot
(``pg_export_snapshot``); on SQLite each reads the seqs up to the head this transaction read,
which appends never change (an append adds a seq after the head).

Anything a worker does not deliver (it could not start, connect or decode a row, or it died) is
done here instead, part by part, through this transaction, so the outcome and the message are
always a single pass's. Below :data:`MIN_ENTRIES` entries, with one core, or for an in-memory
database (which no other process can open), everything is done here.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import re
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from audit.chain import COLUMNS
from audit.errors import ChainBroken
from audit.verify import Part, Verified, check_part, link, verify_rows

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from audit.log import Filters

PART = 4096
"""Seqs in one part of a verification."""
EXPORT_PART = 2048
"""Seqs in one part of an export: this process holds a part's lines until it is complete."""
MIN_ENTRIES = 100_000
"""Below this many entries, starting workers costs more than it saves."""
MAX_WORKERS = 8
AHEAD = 8
"""Frames (an export's blocks of up to 512 lines, a part's result) a worker may run ahead."""
BATCH = 512
PIPE_BYTES = 1 << 20
_SNAPSHOT = re.compile(r"^[0-9A-Za-z-]{1,64}$")
_SELECT = "SELECT " + ", ".join(f'"{column}"' for column in COLUMNS) + " FROM audit_entry"


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def workers_for(entries: int, workers: int | None = None) -> int:
    """How many workers to start for a log of ``entries`` (0: do it all in this process)."""
    chosen = min(cores(), MAX_WORKERS) if workers is None else workers
    if chosen < 2 or (entries < MIN_ENTRIES and workers is None):
        return 0
    return chosen


# this process's side -------------------------------------------------------------------------


def verify_log(
    conn: Connection,
    *,
    head_seq: int,
    canonical_from: int = 1,
    workers: int | None = None,
    part: int | None = None,
) -> Verified:
    """Check the whole chain, in parallel parts when that pays (module docstring); raise
    ChainBroken at the first bad entry, exactly as :func:`audit.verify.verify_rows` would."""
    from audit.log import Filters, rows

    count = workers_for(head_seq, workers)
    plan = _Plan.make(conn, "verify", Filters(), head_seq, canonical_from, count, part or PART)
    if plan is None:
        with contextlib.closing(rows(conn, Filters())) as stored:
            return verify_rows(stored, canonical_from=canonical_from)
    with contextlib.closing(plan.results()) as results:
        return link(found for found, _ in results if isinstance(found, Part))


def export_log(
    conn: Connection,
    filters: Filters,
    fmt: str,
    stream: IO[str],
    *,
    head_seq: int,
    canonical_from: int = 1,
    workers: int | None = None,
    part: int | None = None,
) -> int:
    """Write the entries matching ``filters`` to ``stream`` as ``fmt`` (``jsonl``, ``csv``,
    ``ocsf``), each checked against its own hash; ChainBroken at the first bad one (in export
    order). In parallel parts when that pays and the order is seq's (no time window)."""
    from audit import export
    from audit.log import rows

    windowed = filters.since is not None or filters.until is not None
    count = 0 if windowed else workers_for(head_seq, workers)
    plan = _Plan.make(conn, fmt, filters, head_seq, canonical_from, count,
                      part or EXPORT_PART)
    written = 0
    if plan is None:
        with contextlib.closing(rows(conn, filters)) as stored:
            if fmt == "csv":
                return export.write_csv_rows(_checked(stored, canonical_from), stream)
            write = _byte_sink(stream)
            for block, size in export.export_part(stored, fmt, canonical_from=canonical_from):
                write(block)
                written += size
        return written
    if fmt == "csv":
        stream.write(",".join(COLUMNS) + "\r\n")  # csv.writer's header row
    write = _byte_sink(stream)
    with contextlib.closing(plan.results()) as results:
        for found, blocks in results:
            for block in blocks:
                write(block)
            assert isinstance(found, tuple)
            written += found[0]
            if found[1] is not None:
                raise ChainBroken(*found[1])
    return written


def _checked(stored: Iterable[tuple[Any, ...]], canonical_from: int
             ) -> Iterator[tuple[Any, ...]]:
    from audit.verify import check_row

    for row in stored:
        check_row(row, canonical_from=canonical_from)
        yield row


def _byte_sink(stream: IO[str]) -> Callable[[bytes], Any]:
    """How to write UTF-8 text to ``stream``: straight to its bytes when it is a UTF-8 text
    file whose line ends are written as given (no decoding and encoding again), else as text."""
    if (isinstance(stream, io.TextIOWrapper) and os.linesep == "\n"
            and stream.encoding.lower().replace("-", "") == "utf8"):
        stream.flush()
        binary: IO[bytes] = stream.buffer
        return binary.write
    return lambda block: stream.write(block.decode("utf-8"))


class _Worker:
    """One worker process and the frames it wrote (see :func:`main`), read by a thread of
    this process into a bounded queue: the worker may run ahead of the part being written by
    up to :data:`AHEAD` frames, then waits on its pipe."""

    def __init__(self, job: dict[str, Any]) -> None:
        root = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (root, env.get("PYTHONPATH"))))
        self.frames: queue.Queue[tuple[bytes, bytes] | None] = queue.Queue(AHEAD)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "audit.parallel"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, close_fds=True,
        )
        self.stopped = False
        with contextlib.suppress(OSError, AttributeError, ValueError):  # Linux: fewer switches
            import fcntl

            assert self.process.stdout is not None
            fcntl.fcntl(self.process.stdout.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        try:
            assert self.process.stdin is not None
            # the job (with the database's URL, password included) goes through a pipe:
            # never on a command line or in the environment, where others could read it
            self.process.stdin.write(json.dumps(job).encode("utf-8"))
            self.process.stdin.close()
        except OSError:
            self.stop()
            raise
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        try:
            while not self.stopped:
                kind, _, size = stdout.readline().partition(b" ")
                if kind not in (b"D", b"P", b"X"):
                    break
                length = int(size)
                payload = stdout.read(length)
                if len(payload) != length or not self._put((kind, payload)):
                    break
        except (OSError, ValueError):
            pass
        self._put(None)

    def _put(self, frame: tuple[bytes, bytes] | None) -> bool:
        while not self.stopped:
            with contextlib.suppress(queue.Full):
                self.frames.put(frame, timeout=0.05)
                return True
        return False

    def receive(self) -> tuple[bytes, bytes] | None:
        """The next frame (its kind and payload), or None once the worker is gone."""
        if self.stopped:
            return None
        frame = self.frames.get()
        if frame is None:
            self.stopped = True
        return frame

    def stop(self) -> None:
        """End the worker (if it still runs) and its reader."""
        self.stopped = True
        with contextlib.suppress(OSError):
            self.process.kill()
        self.process.wait()
        if hasattr(self, "reader"):
            self.reader.join()
        with contextlib.suppress(OSError, ValueError):
            if self.process.stdout is not None:
                self.process.stdout.close()


class _Plan:
    """The parts of one task, their workers, and how to do a part here instead."""

    def __init__(self, conn: Connection, task: str, filters: Filters, head_seq: int,
                 canonical_from: int, part: int) -> None:
        self.conn, self.task, self.filters = conn, task, filters
        self.canonical_from = canonical_from
        self.bounds = [(None if lo == 0 else lo, min(lo + part, head_seq))
                       for lo in range(0, head_seq, part)]
        self.head_seq = head_seq
        self.workers: list[_Worker] = []

    @classmethod
    def make(cls, conn: Connection, task: str, filters: Filters, head_seq: int,
             canonical_from: int, workers: int, part: int) -> _Plan | None:
        """The plan with its workers started, or None to do everything in one pass here."""
        if workers < 1 or head_seq < 1:
            return None
        source = _source(conn)
        if source is None:
            return None
        plan = cls(conn, task, filters, head_seq, canonical_from, part)
        where, params = _where(conn, filters)
        for index in range(min(workers, len(plan.bounds))):
            job = {"task": task, "source": source, "where": where, "params": params,
                   "style": conn.dialect.paramstyle, "canonical_from": canonical_from,
                   "parts": plan.bounds[index::workers]}
            try:
                plan.workers.append(_Worker(job))
            except OSError:
                break
        if not plan.workers:
            return None
        return plan

    def results(self) -> Generator[tuple[Part | tuple[int, Any], list[bytes]], None, None]:
        """Each part's result in seq order, the part after the head last: a Part (verify) or
        (rows written, problem or None) with the blocks written (exports)."""
        try:
            for index, bounds in enumerate(self.bounds):
                worker = self.workers[index % len(self.workers)]
                delivered = self._delivered(worker)
                yield delivered if delivered is not None else self._here(*bounds)
            yield self._here(self.head_seq, None)
        finally:
            for worker in self.workers:
                worker.stop()

    def _delivered(self, worker: _Worker) -> tuple[Part | tuple[int, Any], list[bytes]] | None:
        blocks: list[bytes] = []
        while (frame := worker.receive()) is not None:
            kind, payload = frame
            if kind == b"D":
                blocks.append(payload)
                continue
            if kind == b"X":  # the worker could not do this part: it goes on with its next
                return None
            found = json.loads(payload)
            if self.task == "verify":
                return Part.from_json(found), blocks
            problem = found["problem"]
            return (found["count"], None if problem is None else tuple(problem)), blocks
        return None

    def _here(self, after: int | None, through: int | None
              ) -> tuple[Part | tuple[int, Any], list[bytes]]:
        from audit.export import export_part
        from audit.log import rows

        bounded = replace(self.filters, after_seq=after, through_seq=through)
        with contextlib.closing(rows(self.conn, bounded)) as stored:
            if self.task == "verify":
                return check_part(stored, canonical_from=self.canonical_from), []
            blocks: list[bytes] = []
            written = 0
            try:
                for block, size in export_part(stored, self.task,
                                               canonical_from=self.canonical_from):
                    blocks.append(block)
                    written += size
            except ChainBroken as exc:
                return (written, (exc.seq, exc.problem)), blocks
            return (written, None), blocks


def _source(conn: Connection) -> dict[str, Any] | None:
    """How a worker reaches this connection's database and snapshot, or None if it cannot."""
    url = conn.engine.url
    if conn.dialect.name == "sqlite":
        database = url.database or ""
        uri = str(url.query.get("uri", "")).lower() in ("true", "1")
        if not database or database == ":memory:" or "mode=memory" in database:
            return None
        if uri and not database.startswith("file:"):
            return None
        return {"dialect": "sqlite", "database": database, "uri": uri}
    if conn.dialect.name != "postgresql":
        return None
    snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar()
    if not isinstance(snapshot, str) or not _SNAPSHOT.match(snapshot):
        return None
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return {"dialect": "postgresql", "conninfo": conninfo, "snapshot": snapshot}


def _where(conn: Connection, filters: Filters) -> tuple[str, Any]:
    """The filters' SQL condition in the driver's own parameter style, and its parameters."""
    import sqlalchemy as sa

    clauses = replace(filters, after_seq=None, through_seq=None).clauses()
    if not clauses:
        return "", [] if conn.dialect.paramstyle == "qmark" else {}
    compiled = sa.and_(*clauses).compile(dialect=conn.dialect,
                                         compile_kwargs={"render_postcompile": True})
    if compiled.positiontup is not None:
        return str(compiled), [compiled.params[name] for name in compiled.positiontup]
    return str(compiled), dict(compiled.params)


# the worker's side ---------------------------------------------------------------------------


def _statement(job: dict[str, Any], after: int | None, through: int) -> tuple[str, Any]:
    """The worker's query of one part: its rows in seq order."""
    qmark = job["style"] == "qmark"
    mark_after, mark_through = ("?", "?") if qmark else ("%(relink_after)s",
                                                         "%(relink_through)s")
    conditions = [job["where"]] if job["where"] else []
    if after is not None:
        conditions.append(f'"seq" > {mark_after}')
    conditions.append(f'"seq" <= {mark_through}')
    sql = f"{_SELECT} WHERE {' AND '.join(conditions)} ORDER BY \"seq\""
    if qmark:
        return sql, [*job["params"], *([] if after is None else [after]), through]
    return sql, {**job["params"], "relink_after": after, "relink_through": through}


class _Reader:
    """A worker's read-only connection: ``stream`` runs a query and streams its rows."""

    def __init__(self, source: dict[str, Any]) -> None:
        if source["dialect"] == "sqlite":
            database = source["database"]
            if not source["uri"]:  # read-write, never create: a file that is gone stays gone
                database = "file:" + urllib.parse.quote(os.path.abspath(database)) + "?mode=rw"
            self.lite = _sqlite(database)
            self.lite.execute("PRAGMA query_only = ON")
            self.pg: Any = None
            return
        import psycopg

        self.pg = psycopg.connect(source["conninfo"], connect_timeout=10,
                                  application_name="relink")
        self.pg.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        self.pg.read_only = True
        # the snapshot of the parent's transaction (checked: [0-9A-Za-z-] only)
        self.pg.execute(f"SET TRANSACTION SNAPSHOT '{source['snapshot']}'")

    def stream(self, sql: str, params: Any) -> Iterator[Any]:
        if self.pg is None:
            return iter(self.lite.execute(sql, params))
        return self._server_side(sql, params)

    def _server_side(self, sql: str, params: Any) -> Iterator[Any]:
        with self.pg.cursor(name="part") as cursor:  # BATCH rows in memory at a time
            cursor.itersize = BATCH
            cursor.execute(sql, params)
            yield from cursor


def _sqlite(uri: str) -> Any:
    """A connection to the SQLite database at ``uri`` through APSW, whose rows cost about half
    of what the standard module's do (1.5 µs against 2.7 µs for an entry's 24 columns), the
    largest share of a worker's time; through sqlite3 where APSW is missing."""
    try:
        import apsw
    except ImportError:  # pragma: no cover - a dependency; kept working without it
        import sqlite3

        return sqlite3.connect(uri, uri=True, isolation_level=None)
    connection = apsw.Connection(uri, flags=apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_URI)
    connection.set_busy_timeout(5000)  # sqlite3's default wait for a lock
    return connection


def _frame(out: IO[bytes], kind: bytes, payload: bytes) -> None:
    out.write(kind + b" %d\n" % len(payload))
    out.write(payload)


def main() -> None:
    """A worker: reads its job (JSON) on stdin, writes one frame per part and block on stdout:
    ``D`` an export's block, then ``P`` the part's result (JSON), or ``X`` when it could not
    do the part (this process's parent does it instead)."""
    from audit.export import export_part

    job = json.loads(sys.stdin.buffer.read())
    out = sys.stdout.buffer
    task, canonical_from = job["task"], job["canonical_from"]
    try:
        reader = _Reader(job["source"])
    except Exception:
        return  # the parent does every part itself
    for after, through in job["parts"]:
        try:
            found = reader.stream(*_statement(job, after, through))
            if task == "verify":
                result = check_part(found, canonical_from=canonical_from).to_json()
            else:
                result = {"count": 0, "problem": None}
                try:
                    for block, size in export_part(found, task,
                                                   canonical_from=canonical_from):
                        _frame(out, b"D", block)
                        result["count"] += size
                except ChainBroken as exc:
                    result["problem"] = [exc.seq, exc.problem]
            _frame(out, b"P", json.dumps(result).encode())
        except BrokenPipeError:
            return
        except Exception:  # not readable here (not UTF-8 text, a lost connection...)
            _frame(out, b"X", b"{}")
        try:
            out.flush()
        except BrokenPipeError:
            return


if __name__ == "__main__":
    main()
