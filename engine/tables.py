"""The workflow instances table (SQLModel). Audit tables live in audit/tables.py."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

ID = BigInteger().with_variant(Integer(), "sqlite")


class WorkflowRow(SQLModel, table=True):
    """One instance of a workflow, on one subject (``subject_type``, ``subject_id``).
    ``revision`` is bumped by every write (compare-and-set); ``open_subject_id`` equals
    ``subject_id`` until a final state, so at most one open instance exists per subject;
    ``remote_ref`` and ``results`` hold JSON objects; the ``in_flight_*`` columns describe a
    remote step under way. Migration 0004 made invoice corrections' columns into subjects."""

    __tablename__ = "workflow"
    __table_args__ = (
        UniqueConstraint(
            "company_id", "subject_type", "open_subject_id", name="uq_workflow_open_subject"
        ),
        Index("ix_workflow_state", "state"),
        Index("ix_workflow_project", "project_id"),
        Index("ix_workflow_subject", "subject_type", "subject_id"),
    )

    id: int | None = Field(default=None, sa_column=Column(ID, primary_key=True, autoincrement=True))
    workflow: str = Field(sa_column=Column(String(100), nullable=False))
    version: int = Field(sa_column=Column(Integer, nullable=False))
    state: str = Field(sa_column=Column(String(50), nullable=False))
    revision: int = Field(sa_column=Column(Integer, nullable=False))
    company_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    project_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    erp: str = Field(sa_column=Column(String(50), nullable=False))
    erp_key: str = Field(sa_column=Column(String(20), nullable=False))
    reason: str | None = Field(default=None, sa_column=Column(Text))
    snapshot: str = Field(sa_column=Column(Text, nullable=False))
    in_flight_step: str | None = Field(default=None, sa_column=Column(String(50)))
    in_flight_to: str | None = Field(default=None, sa_column=Column(String(50)))
    in_flight_key: str | None = Field(default=None, sa_column=Column(String(64)))
    in_flight_since: str | None = Field(default=None, sa_column=Column(String(32)))
    in_flight_data: str | None = Field(default=None, sa_column=Column(Text))
    in_flight_owner: str | None = Field(default=None, sa_column=Column(String(255)))
    in_flight_host: str | None = Field(default=None, sa_column=Column(String(255)))
    in_flight_pid: int | None = Field(default=None, sa_column=Column(Integer))
    in_flight_lease_until: str | None = Field(default=None, sa_column=Column(String(32)))
    subject_type: str = Field(sa_column=Column(String(50), nullable=False))
    subject_id: str = Field(sa_column=Column(String(100), nullable=False))
    open_subject_id: str | None = Field(default=None, sa_column=Column(String(100)))
    remote_ref: str = Field(sa_column=Column(Text, nullable=False))
    results: str = Field(sa_column=Column(Text, nullable=False))
    created_at: str = Field(sa_column=Column(String(32), nullable=False))
    updated_at: str = Field(sa_column=Column(String(32), nullable=False))


WORKFLOW = WorkflowRow.__table__  # type: ignore[attr-defined]


class BatchRow(SQLModel, table=True):
    """Many corrections of one workflow driven at once (``kind`` ``batch``), or a plan: one
    correction with the subjects it must unwind first and re-enter after (``kind`` ``plan``,
    ``subject_id`` its target). ``options`` holds JSON (the re-entry choice, the target state);
    ``status`` is ``open``, ``stopped`` (a plan stopped by a refusal) or ``finished``. A plan's
    runner holds the row under a lease (``claimed_*``). Migration 0005."""

    __tablename__ = "batch"

    id: int | None = Field(default=None, sa_column=Column(ID, primary_key=True, autoincrement=True))
    kind: str = Field(sa_column=Column(String(20), nullable=False))
    workflow: str = Field(sa_column=Column(String(100), nullable=False))
    company_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    project_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    subject_id: str | None = Field(default=None, sa_column=Column(String(100)))
    status: str = Field(sa_column=Column(String(20), nullable=False))
    reason: str | None = Field(default=None, sa_column=Column(Text))
    options: str = Field(sa_column=Column(Text, nullable=False))
    created_by: str | None = Field(default=None, sa_column=Column(String(255)))
    created_at: str = Field(sa_column=Column(String(32), nullable=False))
    updated_at: str = Field(sa_column=Column(String(32), nullable=False))
    revision: int = Field(sa_column=Column(Integer, nullable=False))
    claimed_by: str | None = Field(default=None, sa_column=Column(String(255)))
    claimed_host: str | None = Field(default=None, sa_column=Column(String(255)))
    claimed_pid: int | None = Field(default=None, sa_column=Column(Integer))
    claimed_until: str | None = Field(default=None, sa_column=Column(String(32)))


class BatchItemRow(SQLModel, table=True):
    """One subject of a batch, in ``position`` order: the correction driving it
    (``workflow_id``, once started), ``status`` (``pending``, ``done``, ``stopped`` by a refusal,
    ``failed`` when a remote system did not answer: tried again by the next run), the last
    attempt's ``outcome`` and ``message``, and the worker holding it under a lease
    (``claimed_*``). ``data`` holds the JSON of a step taking data; ``role`` a plan's part for
    it (``unwind``, ``target``). Migration 0005."""

    __tablename__ = "batch_item"
    __table_args__ = (
        UniqueConstraint("batch_id", "position", name="uq_batch_item_position"),
        Index("ix_batch_item_status", "batch_id", "status"),
        Index("ix_batch_item_claim", "claimed_host", "claimed_until"),
    )

    id: int | None = Field(default=None, sa_column=Column(ID, primary_key=True, autoincrement=True))
    batch_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    position: int = Field(sa_column=Column(Integer, nullable=False))
    subject_id: str | None = Field(default=None, sa_column=Column(String(100)))
    project_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    label: str | None = Field(default=None, sa_column=Column(String(255)))
    role: str | None = Field(default=None, sa_column=Column(String(20)))
    reason: str | None = Field(default=None, sa_column=Column(Text))
    data: str | None = Field(default=None, sa_column=Column(Text))
    workflow_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    status: str = Field(sa_column=Column(String(20), nullable=False))
    outcome: str | None = Field(default=None, sa_column=Column(String(20)))
    message: str | None = Field(default=None, sa_column=Column(Text))
    attempts: int = Field(sa_column=Column(Integer, nullable=False))
    updated_at: str = Field(sa_column=Column(String(32), nullable=False))
    revision: int = Field(sa_column=Column(Integer, nullable=False))
    claimed_by: str | None = Field(default=None, sa_column=Column(String(255)))
    claimed_host: str | None = Field(default=None, sa_column=Column(String(255)))
    claimed_pid: int | None = Field(default=None, sa_column=Column(Integer))
    claimed_until: str | None = Field(default=None, sa_column=Column(String(32)))


BATCH = BatchRow.__table__  # type: ignore[attr-defined]
BATCH_ITEM = BatchItemRow.__table__  # type: ignore[attr-defined]
