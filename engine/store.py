"""Workflow instances in the database, through SQLAlchemy Core statements on the SQLModel table
(the hot path stays one statement per read or compare-and-set write)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from engine.tables import WORKFLOW

_BY_ID = sa.select(WORKFLOW).where(WORKFLOW.c.id == sa.bindparam("wid"))
_OF_SUBJECT = sa.select(
    sa.func.max(sa.case((WORKFLOW.c.open_subject_id.is_not(None), WORKFLOW.c.id))),
    sa.func.count(),
).where(
    WORKFLOW.c.company_id == sa.bindparam("company_id"),
    WORKFLOW.c.subject_type == sa.bindparam("subject_type"),
    WORKFLOW.c.subject_id == sa.bindparam("subject_id"),
)
# compare-and-set: the SET clause comes from the parameters given (compiled once per column set),
# the row as written comes back in the same statement (RETURNING, SQLite 3.35+ and PostgreSQL)
_CAS = (
    WORKFLOW.update()
    .where(WORKFLOW.c.id == sa.bindparam("cas_id"), WORKFLOW.c.revision == sa.bindparam("cas_at"))
    .returning(*WORKFLOW.c)
)


@dataclass(frozen=True, slots=True)
class Instance:
    """A stored workflow instance, JSON columns decoded."""

    id: int
    workflow: str
    version: int
    state: str
    revision: int
    company_id: int
    project_id: int
    erp: str
    erp_key: str
    reason: str | None
    snapshot: dict[str, Any]
    in_flight_step: str | None
    in_flight_to: str | None
    in_flight_key: str | None
    in_flight_since: str | None
    in_flight_data: dict[str, Any] | None
    in_flight_owner: str | None
    in_flight_host: str | None
    in_flight_pid: int | None
    in_flight_lease_until: str | None
    subject_type: str
    subject_id: str
    remote_ref: dict[str, Any]
    results: dict[str, Any]
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: Any) -> Instance:
        m = dict(row._mapping)
        del m["open_subject_id"]
        for key in ("snapshot", "in_flight_data", "remote_ref", "results"):
            m[key] = json.loads(m[key]) if m[key] is not None else None
        return cls(**m)


NOT_IN_FLIGHT: dict[str, Any] = {
    "in_flight_step": None,
    "in_flight_to": None,
    "in_flight_key": None,
    "in_flight_since": None,
    "in_flight_data": None,
    "in_flight_owner": None,
    "in_flight_host": None,
    "in_flight_pid": None,
    "in_flight_lease_until": None,
}
"""The values that release a step from flight (and mark a settled instance)."""


class DuplicateOpen(Exception):
    """An open instance already exists for the subject."""


class Overtaken(Exception):
    """Another instance on the subject was started since the caller last looked."""


# the codes of a unique constraint refused (never the message text, which is localised)
SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY, UNIQUE_VIOLATION = 2067, 1555, "23505"


def _unique_violation(exc: DBIntegrityError) -> bool:
    cause = exc.orig
    return (
        getattr(cause, "sqlite_errorcode", None)
        in (SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY)
        or getattr(cause, "sqlstate", None) == UNIQUE_VIOLATION
    )


def dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)


class WorkflowStore:
    """Reads and compare-and-set writes of workflow instances, inside the caller's transaction."""

    def get(self, conn: Connection, workflow_id: int) -> Instance | None:
        row = conn.execute(_BY_ID, {"wid": workflow_id}).first()
        return Instance.from_row(row) if row is not None else None

    def of_subject(
        self, conn: Connection, company_id: int, subject_type: str, subject_id: str
    ) -> tuple[int | None, int]:
        """The subject's open instance (or None), and how many instances it has had."""
        row = conn.execute(
            _OF_SUBJECT,
            {"company_id": company_id, "subject_type": subject_type, "subject_id": subject_id},
        ).one()
        return row[0], int(row[1])

    def insert(self, conn: Connection, values: dict[str, Any]) -> int:
        """Insert a new instance; raises DuplicateOpen if its subject has an open one."""
        row = dict(values, revision=1, open_subject_id=values["subject_id"])
        row.setdefault("results", {})
        for key in ("snapshot", "remote_ref", "results"):
            row[key] = dumps(row[key])
        try:
            with conn.begin_nested():
                result = conn.execute(WORKFLOW.insert().returning(WORKFLOW.c.id), row)
                return int(result.scalar_one())
        except DBIntegrityError as exc:
            if _unique_violation(exc):
                raise DuplicateOpen from exc
            raise

    def update(
        self, conn: Connection, workflow_id: int, revision: int, values: dict[str, Any]
    ) -> Instance | None:
        """Compare-and-set: apply ``values`` only if the row is still at ``revision``.

        Returns the instance as written (one statement: no re-read), or None when the row had
        moved on (or does not exist).
        """
        params = dict(values, revision=revision + 1, cas_id=workflow_id, cas_at=revision)
        for key in ("results", "in_flight_data"):
            if key in params:
                params[key] = dumps(params[key])
        row = conn.execute(_CAS, params).first()
        return Instance.from_row(row) if row is not None else None

    def open_instances(self, conn: Connection, *, limit: int = 10_000) -> list[Instance]:
        """The instances not in a final state, oldest first."""
        statement = (
            sa.select(WORKFLOW).where(WORKFLOW.c.open_subject_id.is_not(None))
            .order_by(WORKFLOW.c.id).limit(limit)
        )
        return [Instance.from_row(row) for row in conn.execute(statement)]

    def list(
        self,
        conn: Connection,
        *,
        state: str | None = None,
        project_id: int | None = None,
        updated_before: str | None = None,
        finals: frozenset[str] = frozenset(),
        limit: int = 50,
        workflow: str | None = None,
    ) -> list[Instance]:
        statement = sa.select(WORKFLOW).order_by(WORKFLOW.c.id.desc()).limit(limit)
        if workflow is not None:
            statement = statement.where(WORKFLOW.c.workflow == workflow)
        if state is not None:
            statement = statement.where(WORKFLOW.c.state == state)
        if project_id is not None:
            statement = statement.where(WORKFLOW.c.project_id == project_id)
        if updated_before is not None:
            statement = statement.where(
                WORKFLOW.c.updated_at < updated_before, WORKFLOW.c.state.not_in(finals)
            )
        return [Instance.from_row(row) for row in conn.execute(statement)]
