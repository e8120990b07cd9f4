"""Compliance reviewers' use cases: query, verify, checkpoint and export the audit log.

Audit errors are translated here: an unreadable or malformed key or checkpoint file becomes
:class:`UsageError` (exit 2); a checkpoint or chain that does not verify, :class:`IntegrityError`
(exit 5), whose message names the first bad seq.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa

# The CLI reaches the audit log only through this module: the filters and outcomes it asks with
# are re-exported here (``X as X``).
from audit.chain import OUTCOMES as OUTCOMES
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
from audit.log import AuditLog, count, hash_at, head, logins_like, query, rows, utc_now
from audit.log import Filters as Filters
from audit.parallel import export_log, verify_log
from audit.timeline import differences
from audit.verify import Verified, verify_from
from engine.db import Database
from engine.errors import IntegrityError, UsageError
from engine.outfile import check_target, write_atomically
from engine.state_check import check_states
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
        IntegrityError if the log's head row is gone or an entry's evidence is ambiguous.

        ``actor_login`` matches a login in any case, or its local part (:func:`logins_like`)."""
        with self.db.read() as conn:
            head(conn)
            filters = _resolved(conn, filters)
            yield from query(conn, filters, limit=limit, newest_first=newest_first)

    def count(self, filters: Filters) -> int:
        """How many entries match ``filters`` (as :meth:`entries` reads them)."""
        with self.db.read() as conn:
            return count(conn, _resolved(conn, filters))

    def entry(self, seq: int) -> dict[str, Any]:
        """The entry ``seq`` with ``changes``, the field-by-field difference its evidence
        records (:func:`changes`); UsageError if there is none."""
        found = list(self.entries(Filters(after_seq=seq - 1, through_seq=seq)))
        if not found:
            raise UsageError(f"no audit entry with seq {seq}")
        return found[0] | {"changes": changes(found[0])}

    def corrections_recording(self, key: str, value: int | str) -> tuple[int, ...]:
        """The instances whose recorded results hold ``key`` = ``value``: e.g. every
        correction that re-entered its subject under the id an operator now asks about."""
        from engine.tables import WORKFLOW

        text = json.dumps({key: value}, separators=(",", ":"))[1:-1]
        column = WORKFLOW.c.results
        statement = sa.select(WORKFLOW.c.id, column).where(sa.or_(
            column.contains(text + ",", autoescape=True),
            column.contains(text + "}", autoescape=True),
        )).order_by(WORKFLOW.c.id)
        with self.db.read() as conn:
            found = conn.execute(statement).all()
        return tuple(int(wid) for wid, results in found
                     if _recorded(results).get(key) == value)

    # verify --------------------------------------------------------------------------------

    def verify(
        self,
        checkpoint: Path | None = None,
        public_key: Path | None = None,
        *,
        since_checkpoint: Path | None = None,
    ) -> dict[str, Any]:
        """Check the whole chain and its head, then the signed checkpoint if one is given; with
        ``since_checkpoint``, the checkpoint's signature and only the entries from its seq on
        (:meth:`verify_since`).

        Raises IntegrityError naming the first bad seq; UsageError for unreadable files.
        """
        if since_checkpoint is not None:
            if checkpoint is not None:
                raise UsageError("--checkpoint and --since-checkpoint cannot be combined")
            return self.verify_since(since_checkpoint, public_key)
        signed = _checked(checkpoint, public_key) if checkpoint is not None else None
        with self.db.read() as conn:
            recorded = _head_of(conn, signed)
            try:
                checked = verify_log(conn, head_seq=recorded["seq"],
                                     canonical_from=recorded["canonical_from"])
            except ChainBroken as exc:
                raise IntegrityError(
                    f"audit log verification failed at seq {exc.seq}: {exc.problem}"
                ) from exc
            _check_end(checked, recorded)
            if signed is not None:
                _match(signed, checked.last_seq, hash_at(conn, signed["seq"]))
            started = time.perf_counter()
            corrections = check_states(conn)  # a pass of its own, with its own figure
            states_seconds = time.perf_counter() - started
        result: dict[str, Any] = {
            "ok": True,
            "log_id": recorded["log_id"],
            "entries": checked.count,
            "head_seq": checked.last_seq,
            "head_hash": checked.last_hash,
            "states": {"corrections": corrections, "seconds": round(states_seconds, 6)},
        }
        if signed is not None:
            result["checkpoint"] = {
                key: signed[key] for key in ("seq", "hash", "signed_at", "log_id")
            } | {"key": signed["key"]}
        return result

    def verify_since(self, checkpoint: Path, public_key: Path | None) -> dict[str, Any]:
        """Check a signed checkpoint, then only the entries from its seq on: the entry at its
        seq must hold the signed hash and hash to it, each later one link to the one before
        and hash to its own hash, up to the head (the entries before were checked when the
        checkpoint was, and the signed hash covers them). IntegrityError naming the first bad
        seq; UsageError for unreadable files."""
        signed = _checked(checkpoint, public_key)
        with self.db.read() as conn:
            recorded = _head_of(conn, signed)
            seq = signed["seq"]
            if seq:
                _match(signed, recorded["seq"], hash_at(conn, seq))
            after = Filters(after_seq=seq - 1) if seq else Filters()
            try:
                with contextlib.closing(rows(conn, after)) as stored:
                    checked = verify_from(stored, seq=seq, hash=signed["hash"],
                                          canonical_from=recorded["canonical_from"])
            except ChainBroken as exc:
                raise IntegrityError(
                    f"audit log verification failed at seq {exc.seq}: {exc.problem}"
                ) from exc
            _check_end(checked, recorded)
        return {
            "ok": True,
            "log_id": recorded["log_id"],
            "entries": checked.count,
            "head_seq": checked.last_seq,
            "head_hash": checked.last_hash,
            "since_checkpoint": True,
            "checkpoint": {key: signed[key] for key in ("seq", "hash", "signed_at", "log_id")}
            | {"key": signed["key"]},
        }

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

    def export(
        self, filters: Filters, fmt: str, out: Path | None = None, *,
        stream: IO[str] | None = None,
    ) -> int:
        """Stream matching entries as ``fmt`` to ``out`` (written atomically) or stdout.

        Each entry is checked against its own hash as it is read (:func:`check_row`), so what
        is exported is exactly what was hashed: ``jsonl`` and ``csv`` carry the evidence text as
        stored, ``ocsf`` the entry parsed from it. The first entry that fails stops the export
        (IntegrityError naming its seq) and nothing is written: to ``out`` no file, to stdout
        no byte, as the output is staged (:func:`spooled`) until every entry passed.
        """
        write = self._export_writer(filters, fmt)
        if out is None:
            return spooled(write, stream or for_terminal(sys.stdout, fmt))
        protect = _database_files(self.db)
        check_target(out, protect=protect)
        counted: list[int] = []
        write_atomically(out, lambda stream: counted.append(write(stream)), protect=protect)
        return counted[0]

    def _export_writer(self, filters: Filters, fmt: str) -> Callable[[IO[str]], int]:
        if fmt not in FORMATS:
            raise UsageError(f"unknown export format {fmt!r}: use {', '.join(FORMATS)}")
        return lambda stream: self._export(filters, fmt, stream)

    def _export(self, filters: Filters, fmt: str, stream: IO[str]) -> int:
        """The matching entries written to ``stream``, each row checked against its own hash
        as it is read (:func:`audit.parallel.export_log`, on every core for a long log)."""
        with self.db.read() as conn:
            _one_snapshot(conn)
            recorded = head(conn)
            filters = _resolved(conn, filters)
            return export_log(conn, filters, fmt, stream, head_seq=recorded["seq"],
                              canonical_from=recorded["canonical_from"])


# what an entry records ---------------------------------------------------------------------

# the actions an entry records besides the steps of a workflow: opening an instance, settling a
# step left in flight, and the log's own checkpoints (and approvals: engine.approvals.APPROVE)
OPENING, SETTLING, CHECKPOINT = "start", "resume", "checkpoint"


@dataclasses.dataclass(frozen=True, slots=True)
class Vocabulary:
    """The names audit entries use: the steps and states of the installed workflows, and the
    actions (``start``, every step, ``resume``, ``approve``, ``checkpoint``)."""

    steps: tuple[str, ...]
    states: tuple[str, ...]
    actions: tuple[str, ...]


def vocabulary() -> Vocabulary:
    """The steps, states and actions of every installed workflow definition."""
    from engine.approvals import APPROVE
    from workflows.registry import all_definitions

    steps: dict[str, None] = {}
    states: dict[str, None] = {}
    for definition in all_definitions():
        steps.update(dict.fromkeys(step.name for step in definition.steps))
        states.update(dict.fromkeys(str(state) for state in definition.states))
    from engine.entries import ACTIONS as BATCH_ACTIONS

    actions = (OPENING, *steps, SETTLING, APPROVE, CHECKPOINT, *BATCH_ACTIONS)
    return Vocabulary(tuple(steps), tuple(states), actions)


def changes(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The fields an entry's evidence records as changed: its ``changes`` (``[{"field",
    "before", "after"}]``) when it has them, else the difference of its ``before`` and
    ``after`` snapshots, nested fields named by their path (``items[1].amount``)."""
    evidence = entry.get("evidence")
    if not isinstance(evidence, Mapping):
        return []
    recorded = evidence.get("changes")
    if isinstance(recorded, list):
        return [dict(change) for change in recorded if isinstance(change, Mapping)]
    before, after = evidence.get("before"), evidence.get("after")
    if not isinstance(before, Mapping) or not isinstance(after, Mapping):
        return []
    return [
        {"field": d.field, "before": None if d.kind == "added" else d.before,
         "after": None if d.kind == "removed" else d.after, "kind": d.kind}
        for d in differences(before, after) if d.kind != "same"
    ]


def _resolved(conn: Any, filters: Filters) -> Filters:
    """``filters`` with the logins its actor stands for (:func:`logins_like`)."""
    if filters.actor_login is not None and filters.actor_logins is None:
        return dataclasses.replace(filters, actor_logins=logins_like(conn, filters.actor_login))
    return filters


def _recorded(text: Any) -> dict[str, Any]:
    try:
        found = json.loads(text) if isinstance(text, str) else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


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


def _head_of(conn: sa.Connection, signed: dict[str, Any] | None) -> dict[str, Any]:
    """The head of the log a verification reads, in one snapshot from here on; IntegrityError
    when it is missing or ``signed`` (a checked checkpoint) is of another log."""
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
    return recorded


def _check_end(checked: Verified, recorded: dict[str, Any]) -> None:
    """Raise IntegrityError unless the chain ends where the head says it does."""
    if (checked.last_seq, checked.last_hash) != (recorded["seq"], recorded["hash"]):
        seq = min(checked.last_seq, recorded["seq"]) + 1
        raise IntegrityError(
            f"audit log verification failed at seq {seq}: the log ends at seq"
            f" {checked.last_seq} but its head records seq {recorded['seq']}"
            " (entries cut off or added outside relink)"
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
        "action": CHECKPOINT,
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
