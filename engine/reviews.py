"""Compliance reviewers' use cases: query, verify, checkpoint and export the audit log.

Audit errors are translated here: an unreadable or malformed key or checkpoint file becomes
:class:`UsageError` (exit 2); a checkpoint or chain that does not verify, :class:`IntegrityError`
(exit 5), whose message names the first bad seq.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

# The CLI reaches the audit log only through this module: the filters and outcomes it asks with
# are re-exported here (``X as X``).
from audit.chain import OUTCOMES as OUTCOMES
from audit.chain import EvidenceError, entry_from_row
from audit.checkpoint import (
    fingerprint,
    generate_keypair,
    load_private_key,
    load_public_key,
    read_checkpoint,
    sign_checkpoint,
    verify_checkpoint,
)
from audit.errors import ChainBroken, CheckpointError, CheckpointUnreadable, HeadMissing
from audit.log import AuditLog, hash_at, head, query, rows, utc_now
from audit.log import Filters as Filters
from audit.verify import check_row, verify_rows
from engine.db import Database
from engine.errors import IntegrityError, UsageError
from engine.outfile import check_target, write_atomically
from engine.terminal import for_terminal


def write_entries(entries: Iterator[dict[str, Any]], fmt: str, stream: IO[str]) -> int:
    """Write ``entries`` to ``stream`` as ``jsonl`` or ``csv`` (audit.md's export forms);
    the number written."""
    from audit.export import write_csv, write_jsonl

    writer = write_jsonl if fmt == "jsonl" else write_csv
    return writer(entries, stream)

FORMATS = ("jsonl", "csv", "ocsf")
LOG_WORKFLOW = "audit"  # the ``workflow`` of log-level entries (``workflow_id`` null)


def generate_keys(out: Path) -> tuple[Path, Path]:
    """An Ed25519 key pair at ``out`` and ``out.pub``; UsageError if either exists."""
    try:
        return generate_keypair(out)
    except CheckpointUnreadable as exc:
        raise UsageError(str(exc)) from exc


class AuditService:
    """The audit log of one database, as reviewers use it."""

    def __init__(self, db: Database, *, clock: Callable[[], str] = utc_now) -> None:
        self.db = db
        self._clock = clock

    def close(self) -> None:
        """Close the database's pooled connections (the CLI calls this after each command)."""
        self.db.dispose()

    def entries(
        self, filters: Filters, *, limit: int | None = None, newest_first: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Matching entries, streamed (memory stays flat however long the log is).
        IntegrityError if the log's head row is gone or an entry's evidence is ambiguous."""
        with self.db.read() as conn:
            head(conn)
            yield from query(conn, filters, limit=limit, newest_first=newest_first)

    # verify --------------------------------------------------------------------------------

    def verify(
        self, checkpoint: Path | None = None, public_key: Path | None = None
    ) -> dict[str, Any]:
        """Check the whole chain and its head, then the signed checkpoint if one is given.

        Raises IntegrityError naming the first bad seq; UsageError for unreadable files.
        """
        signed = _checked(checkpoint, public_key) if checkpoint is not None else None
        with self.db.read() as conn:
            _one_snapshot(conn)
            try:
                recorded = head(conn)
            except HeadMissing as exc:
                raise IntegrityError(f"audit log verification failed: {exc}") from None
            if signed is not None and signed["log_id"] != recorded["log_id"]:
                raise IntegrityError(
                    f"audit log verification failed: the checkpoint of seq {signed['seq']} is of"
                    f" log {signed['log_id']}, not of this log ({recorded['log_id']})"
                )
            try:
                with contextlib.closing(rows(conn, Filters())) as stored:
                    checked = verify_rows(stored, canonical_from=recorded["canonical_from"])
            except ChainBroken as exc:
                raise IntegrityError(
                    f"audit log verification failed at seq {exc.seq}: {exc.problem}"
                ) from exc
            if (checked.last_seq, checked.last_hash) != (recorded["seq"], recorded["hash"]):
                seq = min(checked.last_seq, recorded["seq"]) + 1
                raise IntegrityError(
                    f"audit log verification failed at seq {seq}: the log ends at seq"
                    f" {checked.last_seq} but its head records seq {recorded['seq']}"
                    " (entries cut off or added outside relink)"
                )
            if signed is not None:
                _match(signed, checked.last_seq, hash_at(conn, signed["seq"]))
        result: dict[str, Any] = {
            "ok": True,
            "log_id": recorded["log_id"],
            "entries": checked.count,
            "head_seq": checked.last_seq,
            "head_hash": checked.last_hash,
        }
        if signed is not None:
            result["checkpoint"] = {
                key: signed[key] for key in ("seq", "hash", "signed_at", "log_id")
            } | {"key": signed["key"]}
        return result

    # checkpoint ----------------------------------------------------------------------------

    def checkpoint(self, key_path: Path, out: Path | None = None) -> dict[str, Any]:
        """Append a log-level ``checkpoint`` entry, then sign the head that includes it.

        The key (and ``out``'s folder) are checked before anything is written; with ``out`` the
        checkpoint is also written there atomically.
        """
        try:
            key = load_private_key(key_path)
        except CheckpointUnreadable as exc:
            raise UsageError(str(exc)) from exc
        if out is not None:
            check_target(out, protect=_database_files(self.db))
        signed_at = self._clock()
        with self.db.write() as conn:
            recorded = head(conn, for_update=True)
            _check_head(conn, recorded)
            entry = AuditLog(dialect=self.db.dialect, clock=lambda: signed_at).append(
                conn, _checkpoint_fields(key.public_key(), recorded["seq"] + 1)
            )
        document = sign_checkpoint(
            key, log_id=recorded["log_id"], seq=entry["seq"], hash=entry["hash"],
            signed_at=signed_at,
        )
        if out is not None:
            text = json.dumps(document, indent=2) + "\n"
            write_atomically(out, lambda stream: stream.write(text),
                             protect=_database_files(self.db))
        return document

    # export --------------------------------------------------------------------------------

    def export(self, filters: Filters, fmt: str, out: Path | None = None) -> int:
        """Stream matching entries as ``fmt`` to ``out`` (written atomically) or stdout.

        Each entry is checked against its own hash as it is read (:func:`check_row`), so what
        is exported is exactly what was hashed: ``jsonl`` and ``csv`` carry the evidence text as
        stored, ``ocsf`` the entry parsed from it. The first entry that fails stops the export
        (IntegrityError naming its seq) and nothing is written: to ``out`` no file, to stdout
        no byte, as the output is staged (:func:`spooled`) until every entry passed.
        """
        write = self._export_writer(filters, fmt)
        if out is None:
            return spooled(write, for_terminal(sys.stdout, fmt))
        protect = _database_files(self.db)
        check_target(out, protect=protect)
        counted: list[int] = []
        write_atomically(out, lambda stream: counted.append(write(stream)), protect=protect)
        return counted[0]

    def _export_writer(self, filters: Filters, fmt: str) -> Callable[[IO[str]], int]:
        from audit.export import write_csv_rows, write_lines, write_ocsf

        if fmt == "ocsf":
            return lambda stream: write_ocsf(self._exported(filters, parse=True), stream)
        if fmt == "jsonl":
            return lambda stream: write_lines(self._jsonl_lines(filters), stream)
        if fmt != "csv":
            raise UsageError(f"unknown export format {fmt!r}: use {', '.join(FORMATS)}")
        return lambda stream: write_csv_rows(self._exported(filters), stream)

    def _jsonl_lines(self, filters: Filters) -> Iterator[str]:
        """The JSONL lines of the matching entries, each row checked against its own hash as it
        is read (:func:`audit.export.checked_jsonl_line`: one encoding of each row for both)."""
        from audit.export import checked_jsonl_line

        with self.db.read() as conn:
            canonical_from = head(conn)["canonical_from"]
            with contextlib.closing(rows(conn, filters)) as stored:
                for row in stored:
                    yield checked_jsonl_line(row, canonical_from=canonical_from)

    def _exported(self, filters: Filters, *, parse: bool = False) -> Iterator[Any]:
        """Matching stored rows (with ``parse``: entries), each checked against its own hash as
        it is read (:func:`check_row`): what is exported is exactly what was hashed."""
        with self.db.read() as conn:
            canonical_from = head(conn)["canonical_from"]
            with contextlib.closing(rows(conn, filters)) as stored:
                for row in stored:
                    check_row(row, canonical_from=canonical_from)
                    if not parse:
                        yield row
                        continue
                    try:
                        yield entry_from_row(row)
                    except EvidenceError as exc:
                        raise ChainBroken(row[0], str(exc)) from None


# helpers -------------------------------------------------------------------------------------


def _checked(checkpoint: Path, public_key: Path | None) -> dict[str, Any]:
    """The checkpoint file, its signature verified; UsageError/IntegrityError as it fails."""
    if public_key is None:
        raise UsageError("--checkpoint needs --public-key")
    try:
        document = read_checkpoint(checkpoint)
        verify_checkpoint(document, public_key)
    except CheckpointUnreadable as exc:
        raise UsageError(str(exc)) from exc
    except CheckpointError as exc:
        raise IntegrityError(f"audit log verification failed: {exc}") from exc
    return document | {"key": fingerprint(load_public_key(public_key))}


def _match(signed: dict[str, Any], last_seq: int, stored_hash: str | None) -> None:
    """Raise IntegrityError unless the log reaches the checkpoint's seq with its hash."""
    seq = signed["seq"]
    if last_seq < seq:
        raise IntegrityError(
            f"audit log verification failed at seq {last_seq + 1}: the log ends at seq"
            f" {last_seq} but the signed checkpoint covers seq {seq} (entries cut off)"
        )
    if stored_hash != signed["hash"]:
        raise IntegrityError(
            f"audit log verification failed at seq {seq}: its hash differs from the signed"
            f" checkpoint's (the log was rewritten at or before seq {seq})"
        )


def _one_snapshot(conn: Any) -> None:
    """Make every statement of this read transaction see the same snapshot. SQLite's read
    transactions already do; PostgreSQL's default (READ COMMITTED) would let an append that
    commits between reading the head and walking the chain look like tampering."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


def _check_head(conn: Any, recorded: dict[str, Any]) -> None:
    """Refuse to sign a head that is not the log's last entry (a cut or grown tail)."""
    seq = recorded["seq"]
    if seq and hash_at(conn, seq) != recorded["hash"]:
        bad = seq
    elif hash_at(conn, seq + 1) is not None:
        bad = seq + 1
    else:
        return
    raise IntegrityError(
        f"audit log verification failed at seq {bad}: the head (seq {seq}) is not the log's"
        " last entry; run `relink audit verify`"
    )


def _checkpoint_fields(public_key: Any, seq: int) -> dict[str, Any]:
    try:
        local_user: str | None = getpass.getuser()
    except (KeyError, OSError):
        local_user = None
    return {
        "workflow_id": None,
        "workflow": LOG_WORKFLOW,
        "workflow_version": 1,
        "action": "checkpoint",
        "outcome": "succeeded",
        "message": f"Checkpoint signed at seq {seq} with key {fingerprint(public_key)}",
        "evidence": {"key": fingerprint(public_key), "local_user": local_user},
    }


SPOOL_BYTES = 8 * 1024 * 1024


def spooled(write: Callable[[IO[str]], int], stream: IO[str]) -> int:
    """Run ``write`` on a staging file, then copy what it wrote to ``stream``: if ``write``
    fails part-way, ``stream`` gets nothing. The staging file stays in memory up to
    :data:`SPOOL_BYTES`, then moves to a temporary file (in ``$TMPDIR``), so memory stays flat."""
    with tempfile.SpooledTemporaryFile(
        max_size=SPOOL_BYTES, mode="w+", encoding="utf-8", newline=""
    ) as staged:
        count = write(staged)
        staged.seek(0)
        while chunk := staged.read(1024 * 1024):
            if chunk.endswith("\r"):  # keep a CRLF whole for a stream that rewrites line ends
                chunk += staged.read(1)
            stream.write(chunk)
    return count


def _database_files(db: Database) -> list[Path]:
    """The files of a SQLite database, which no ``--out`` may replace."""
    name = db.engine.url.database if db.dialect == "sqlite" else None
    if not name or name == ":memory:":
        return []
    return [Path(name + suffix) for suffix in ("", "-wal", "-shm", "-journal")]
