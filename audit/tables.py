"""The audit log's tables (SQLModel). Only the storage modules of audit/ and engine/ use them."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Text
from sqlmodel import Field, SQLModel

ID = BigInteger().with_variant(Integer(), "sqlite")


class AuditEntryRow(SQLModel, table=True):
    """One event of the log. ``evidence`` holds the entry's evidence as JSON text."""

    __tablename__ = "audit_entry"
    __table_args__ = (
        Index("ix_audit_invoice_seq", "invoice_id", "seq"),
        Index("ix_audit_project_seq", "project_id", "seq"),
        Index("ix_audit_actor_seq", "actor_login", "seq"),
        Index("ix_audit_workflow_seq", "workflow_id", "seq"),
        Index("ix_audit_recorded_at", "recorded_at"),
        Index("ix_audit_subject_seq", "subject_type", "subject_id", "seq"),
    )

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    recorded_at: str = Field(sa_column=Column(String(32), nullable=False))
    workflow_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    workflow: str = Field(sa_column=Column(String(100), nullable=False))
    workflow_version: int = Field(sa_column=Column(Integer, nullable=False))
    company_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    project_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    invoice_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    erp_bill_id: str | None = Field(default=None, sa_column=Column(String(100)))
    actor_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    actor_login: str | None = Field(default=None, sa_column=Column(String(255)))
    actor_name: str | None = Field(default=None, sa_column=Column(String(255)))
    action: str = Field(sa_column=Column(String(50), nullable=False))
    from_state: str | None = Field(default=None, sa_column=Column(String(50)))
    to_state: str | None = Field(default=None, sa_column=Column(String(50)))
    outcome: str = Field(sa_column=Column(String(20), nullable=False))
    message: str = Field(sa_column=Column(Text, nullable=False))
    reason: str | None = Field(default=None, sa_column=Column(Text))
    evidence: str = Field(sa_column=Column(Text, nullable=False))
    prev_hash: str = Field(sa_column=Column(String(64), nullable=False))
    hash: str = Field(sa_column=Column(String(64), nullable=False))
    # format 2 (migration 0004): NULL on format-1 entries, which are hashed without these keys
    format: int | None = Field(default=None, sa_column=Column(Integer))
    subject_type: str | None = Field(default=None, sa_column=Column(String(50)))
    subject_id: str | None = Field(default=None, sa_column=Column(String(100)))


class AuditHeadRow(SQLModel, table=True):
    """The single row holding the chain's head; appends lock it (PostgreSQL) to serialise."""

    __tablename__ = "audit_head"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    log_id: str = Field(sa_column=Column(String(64), nullable=False))
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    hash: str = Field(sa_column=Column(String(64), nullable=False))
    # the first seq whose stored evidence must be its JCS encoding (migration 0002)
    canonical_from: int = Field(
        default=1, sa_column=Column(BigInteger, nullable=False, server_default="1")
    )


ENTRY = AuditEntryRow.__table__  # type: ignore[attr-defined]
HEAD = AuditHeadRow.__table__  # type: ignore[attr-defined]
