"""Batches and their items in the database, through SQLAlchemy Core statements.

Workers claim items with row locks that skip what others hold (PostgreSQL ``FOR UPDATE SKIP
LOCKED``; SQLite has one writer at a time, ``BEGIN IMMEDIATE``, so the same statement is exclusive
there) and keep them under a lease (``claimed_until``), renewed while they work: a worker that
dies leaves its items to whoever claims after the lease, or at once to a worker on the same host
that sees the process is gone. Every write bumps ``revision``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.lease import Owner
from engine.tables import BATCH, BATCH_ITEM

# an item's status: waiting for work, reached its goal, stopped by a refusal (a person decides),
# or a remote system did not answer (the next run tries it again)
PENDING, DONE, STOPPED, FAILED = "pending", "done", "stopped", "failed"
# what a run works on: a refused item is tried again by the next run (its cause may be gone: an
# approval given, something fixed by hand), once; one that names no subject never
OPEN_STATUSES = (PENDING, FAILED, STOPPED)
# a batch's status
OPEN, PAUSED, FINISHED = "open", "stopped", "finished"


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True, slots=True)
class Batch:
    id: int
    kind: str
    workflow: str
    company_id: int
    project_id: int | None
    subject_id: str | None
    status: str
    reason: str | None
    options: dict[str, Any]
    created_by: str | None
    created_at: str
    updated_at: str
    revision: int
    claimed_by: str | None
    claimed_host: str | None
    claimed_pid: int | None
    claimed_until: str | None

    @classmethod
    def from_row(cls, row: Any) -> Batch:
        values = dict(row._mapping)
        values["options"] = _loads(values["options"]) or {}
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Item:
    id: int
    batch_id: int
    position: int
    subject_id: str | None
    project_id: int
    label: str | None
    role: str | None
    reason: str | None
    data: dict[str, Any] | None
    workflow_id: int | None
    status: str
    outcome: str | None
    message: str | None
    attempts: int
    updated_at: str
    revision: int
    claimed_by: str | None
    claimed_host: str | None
    claimed_pid: int | None
    claimed_until: str | None

    @classmethod
    def from_row(cls, row: Any) -> Item:
        values = dict(row._mapping)
        values["data"] = _loads(values["data"])
        return cls(**values)


def alive(pid: int) -> bool:
    """Whether a process of this host is running (a claim of a dead one is free at once)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class BatchStore:
    """Reads and writes of batches and items, inside the caller's transaction."""

    def insert(self, conn: Connection, batch: dict[str, Any], items: list[dict[str, Any]]) -> int:
        row = dict(batch, revision=1, options=dumps(batch.get("options") or {}))
        batch_id = int(conn.execute(BATCH.insert().returning(BATCH.c.id), row).scalar_one())
        if items:  # every row with every column (an executemany takes the first row's keys)
            blank = dict.fromkeys(c.name for c in BATCH_ITEM.c if c.name != "id")
            conn.execute(BATCH_ITEM.insert(), [
                blank | item | {"batch_id": batch_id, "revision": 1, "attempts": 0,
                                "data": dumps(item.get("data")),
                                "updated_at": batch["created_at"]}
                for item in items
            ])
        return batch_id

    def get(self, conn: Connection, batch_id: int) -> Batch | None:
        row = conn.execute(sa.select(BATCH).where(BATCH.c.id == batch_id)).first()
        return Batch.from_row(row) if row is not None else None

    def items(self, conn: Connection, batch_id: int) -> list[Item]:
        statement = (sa.select(BATCH_ITEM).where(BATCH_ITEM.c.batch_id == batch_id)
                     .order_by(BATCH_ITEM.c.position))
        return [Item.from_row(row) for row in conn.execute(statement)]

    def item(self, conn: Connection, item_id: int) -> Item:
        row = conn.execute(sa.select(BATCH_ITEM).where(BATCH_ITEM.c.id == item_id)).one()
        return Item.from_row(row)

    def update_batch(self, conn: Connection, batch_id: int, values: dict[str, Any]) -> None:
        conn.execute(BATCH.update().where(BATCH.c.id == batch_id)
                     .values(revision=BATCH.c.revision + 1, **values))

    def update_item(self, conn: Connection, item_id: int, values: dict[str, Any]) -> None:
        if "data" in values:
            values = dict(values, data=dumps(values["data"]))
        conn.execute(BATCH_ITEM.update().where(BATCH_ITEM.c.id == item_id)
                     .values(revision=BATCH_ITEM.c.revision + 1, **values))

    # claims ---------------------------------------------------------------------------------

    def claim(
        self, conn: Connection, batch_id: int, owner: Owner, *, now: str, until: str,
        limit: int, skip: frozenset[int] = frozenset(),
    ) -> list[Item]:
        """Claim up to ``limit`` open items of the batch, in position order, that nobody holds
        (no claim, or one whose lease ended) and that are not in ``skip``."""
        free = (BATCH_ITEM.c.claimed_until.is_(None)) | (BATCH_ITEM.c.claimed_until <= now)
        wanted = (
            sa.select(BATCH_ITEM.c.id)
            .where(BATCH_ITEM.c.batch_id == batch_id, BATCH_ITEM.c.status.in_(OPEN_STATUSES),
                   BATCH_ITEM.c.subject_id.is_not(None), free)
            .order_by(BATCH_ITEM.c.position)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if skip:
            wanted = wanted.where(BATCH_ITEM.c.id.not_in(sorted(skip)))
        statement = (
            BATCH_ITEM.update()
            .where(BATCH_ITEM.c.id.in_(wanted.scalar_subquery()))
            .values(claimed_by=owner.login, claimed_host=owner.host, claimed_pid=owner.pid,
                    claimed_until=until, revision=BATCH_ITEM.c.revision + 1)
            .returning(*BATCH_ITEM.c)
        )
        claimed = [Item.from_row(row) for row in conn.execute(statement)]
        return sorted(claimed, key=lambda item: item.position)

    def renew(self, conn: Connection, item_ids: list[int], owner: Owner, until: str) -> None:
        """Extend this worker's claims on ``item_ids`` (those it still holds)."""
        if item_ids:
            conn.execute(
                BATCH_ITEM.update()
                .where(BATCH_ITEM.c.id.in_(item_ids), *_held_by(BATCH_ITEM, owner))
                .values(claimed_until=until)
            )

    def release(self, conn: Connection, item_id: int, owner: Owner, values: dict[str, Any],
                *, until: str | None = None) -> None:
        """Give the claim up, writing ``values``; ``until`` keeps others off until then (an
        item put back for a while)."""
        if "data" in values:
            values = dict(values, data=dumps(values["data"]))
        conn.execute(
            BATCH_ITEM.update()
            .where(BATCH_ITEM.c.id == item_id, *_held_by(BATCH_ITEM, owner))
            .values(claimed_by=None, claimed_host=None, claimed_pid=None, claimed_until=until,
                    revision=BATCH_ITEM.c.revision + 1, **values)
        )

    def free_dead_claims(self, conn: Connection, host: str, now: str) -> int:
        """Clear the live claims (items and plans) of processes of ``host`` that are gone."""
        freed = 0
        for table in (BATCH_ITEM, BATCH):
            pids = conn.execute(
                sa.select(table.c.claimed_pid).distinct()
                .where(table.c.claimed_host == host, table.c.claimed_until > now)
            ).scalars().all()
            dead = [pid for pid in pids if pid is not None and pid != os.getpid()
                    and not alive(int(pid))]
            if dead:
                done = conn.execute(
                    table.update()
                    .where(table.c.claimed_host == host, table.c.claimed_pid.in_(dead))
                    .values(claimed_until=None, revision=table.c.revision + 1)
                )
                freed += done.rowcount or 0
        return freed

    def workers(self, conn: Connection, now: str) -> int:
        """How many processes hold live claims (on any batch): they share the remote budgets."""
        statement = (
            sa.select(BATCH_ITEM.c.claimed_host, BATCH_ITEM.c.claimed_pid).distinct()
            .where(BATCH_ITEM.c.claimed_until > now, BATCH_ITEM.c.claimed_pid.is_not(None))
        )
        return len(conn.execute(statement).all())

    def held_elsewhere(self, conn: Connection, batch_id: int, owner: Owner, now: str) -> int:
        """Open items of the batch another live worker holds, or put back for a while."""
        statement = sa.select(sa.func.count()).select_from(BATCH_ITEM).where(
            BATCH_ITEM.c.batch_id == batch_id, BATCH_ITEM.c.status.in_(OPEN_STATUSES),
            BATCH_ITEM.c.subject_id.is_not(None), BATCH_ITEM.c.claimed_until > now,
            sa.or_(BATCH_ITEM.c.claimed_host.is_(None), BATCH_ITEM.c.claimed_pid.is_(None),
                   BATCH_ITEM.c.claimed_host != owner.host,
                   BATCH_ITEM.c.claimed_pid != owner.pid),
        )
        return int(conn.execute(statement).scalar_one())

    def claim_batch(self, conn: Connection, batch: Batch, owner: Owner, *, now: str,
                    until: str) -> Batch | None:
        """Hold the whole batch (a plan runs in one process): compare-and-set on its revision,
        when nobody else holds it."""
        if batch.claimed_until is not None and batch.claimed_until > now and (
            (batch.claimed_host, batch.claimed_pid) != (owner.host, owner.pid)
        ):
            return None
        row = conn.execute(
            BATCH.update()
            .where(BATCH.c.id == batch.id, BATCH.c.revision == batch.revision)
            .values(claimed_by=owner.login, claimed_host=owner.host, claimed_pid=owner.pid,
                    claimed_until=until, revision=batch.revision + 1)
            .returning(*BATCH.c)
        ).first()
        return Batch.from_row(row) if row is not None else None

    def renew_batch(self, conn: Connection, batch_id: int, owner: Owner, until: str) -> None:
        conn.execute(BATCH.update().where(BATCH.c.id == batch_id, *_held_by(BATCH, owner))
                     .values(claimed_until=until))

    def release_batch(self, conn: Connection, batch_id: int, owner: Owner,
                      values: dict[str, Any]) -> None:
        conn.execute(
            BATCH.update()
            .where(BATCH.c.id == batch_id, *_held_by(BATCH, owner))
            .values(claimed_by=None, claimed_host=None, claimed_pid=None, claimed_until=None,
                    revision=BATCH.c.revision + 1, **values)
        )


def _held_by(table: sa.Table, owner: Owner) -> tuple[Any, ...]:
    return (table.c.claimed_host == owner.host, table.c.claimed_pid == owner.pid)
