"""Errors of the audit package.

::

    AuditError                   base
    ├── ChainBroken              a bad entry; ``seq`` and ``problem`` say which and why
    ├── HeadMissing              the head row is gone (deleted outside relink)
    └── CheckpointError          a checkpoint does not verify (bad signature, another key)
        └── CheckpointUnreadable a key or checkpoint file cannot be read, parsed or created
"""

from __future__ import annotations


class AuditError(Exception):
    """Base of the audit package's errors."""


class ChainBroken(AuditError):
    def __init__(self, seq: int, problem: str) -> None:
        super().__init__(f"audit log broken at seq {seq}: {problem}")
        self.seq = seq
        self.problem = problem


class HeadMissing(AuditError):
    def __init__(self) -> None:
        super().__init__("the audit log's head row (audit_head) is missing: it was deleted"
                         " outside relink")


class CheckpointError(AuditError):
    """A checkpoint does not verify: its signature is bad or it was signed with another key."""


class CheckpointUnreadable(CheckpointError):
    """A key or checkpoint file cannot be read or parsed, or a key file cannot be created."""
