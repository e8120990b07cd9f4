"""The workflow instances table (SQLModel). Audit tables live in audit/tables.py."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

ID = BigInteger().with_variant(Integer(), "sqlite")


class WorkflowRow(SQLModel, table=True):
    """One correction. ``revision`` is bumped by every write (compare-and-set);
    ``open_invoice_id`` equals ``invoice_id`` until a final state, so at most one open correction
    exists per invoice; the ``in_flight_*`` columns describe a remote step under way."""

    __tablename__ = "workflow"
    __table_args__ = (
        UniqueConstraint("company_id", "open_invoice_id", name="uq_workflow_open_invoice"),
        Index("ix_workflow_state", "state"),
        Index("ix_workflow_project", "project_id"),
        Index("ix_workflow_invoice", "invoice_id"),
    )

    id: int | None = Field(default=None, sa_column=Column(ID, primary_key=True, autoincrement=True))
    workflow: str = Field(sa_column=Column(String(100), nullable=False))
    version: int = Field(sa_column=Column(Integer, nullable=False))
    state: str = Field(sa_column=Column(String(50), nullable=False))
    revision: int = Field(sa_column=Column(Integer, nullable=False))
    company_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    project_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    invoice_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    open_invoice_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    erp: str = Field(sa_column=Column(String(50), nullable=False))
    erp_key: str = Field(sa_column=Column(String(20), nullable=False))
    erp_bill_id: str | None = Field(default=None, sa_column=Column(String(100)))
    reason: str | None = Field(default=None, sa_column=Column(Text))
    snapshot: str = Field(sa_column=Column(Text, nullable=False))
    new_invoice_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    after: str | None = Field(default=None, sa_column=Column(Text))
    in_flight_step: str | None = Field(default=None, sa_column=Column(String(50)))
    in_flight_to: str | None = Field(default=None, sa_column=Column(String(50)))
    in_flight_key: str | None = Field(default=None, sa_column=Column(String(64)))
    in_flight_since: str | None = Field(default=None, sa_column=Column(String(32)))
    in_flight_data: str | None = Field(default=None, sa_column=Column(Text))
    in_flight_owner: str | None = Field(default=None, sa_column=Column(String(255)))
    in_flight_host: str | None = Field(default=None, sa_column=Column(String(255)))
    in_flight_pid: int | None = Field(default=None, sa_column=Column(Integer))
    in_flight_lease_until: str | None = Field(default=None, sa_column=Column(String(32)))
    created_at: str = Field(sa_column=Column(String(32), nullable=False))
    updated_at: str = Field(sa_column=Column(String(32), nullable=False))


WORKFLOW = WorkflowRow.__table__  # type: ignore[attr-defined]
