"""The audit report use case: verify the whole log (and a signed checkpoint), read the
matching entries, and render them as one self-contained HTML file (:mod:`audit.report`) whose
SHA-256 is returned for the reviewer to cite.

A log that fails verification still gets its report, which says so at the top
(:attr:`Report.ok` is False and the CLI exits 5 after writing it); an entry that cannot be
read unambiguously stops the report (IntegrityError), as every reader of the log does; an
unreadable key or checkpoint file is a UsageError before anything is read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from audit.diagram import Graph
from audit.log import Filters, utc_now
from audit.report import ChainCheck, CheckpointCheck, ReportInput, described, render
from engine.db import Database
from engine.errors import IntegrityError, UsageError
from engine.outfile import check_target, write_atomically
from engine.reviews import AuditService, _database_files
from engine.terminal import printable
from workflows.errors import DefinitionError
from workflows.registry import get

MAX_ENTRIES = 20_000  # a report is read by people; its page is built in memory (10,000 entries:
# 25 MB of HTML, 225 MB peak, 5.6 s)


@dataclass(frozen=True, slots=True)
class Report:
    """A rendered report: its bytes (UTF-8 HTML), their SHA-256, and what it found."""

    data: bytes
    sha256: str
    chain: ChainCheck
    checkpoint: CheckpointCheck | None
    entries: int
    corrections: int

    @property
    def ok(self) -> bool:
        """The chain (and the checkpoint given) verified."""
        return self.chain.ok and (self.checkpoint is None or self.checkpoint.ok)

    @property
    def problem(self) -> str | None:
        """The first verification failure, for the one line the CLI prints."""
        if not self.chain.ok:
            return self.chain.problem
        return self.checkpoint.problem if self.checkpoint and not self.checkpoint.ok else None

    def document(self) -> dict[str, Any]:
        """The report's facts as plain data (``--json``)."""
        return {
            "ok": self.ok,
            "sha256": self.sha256,
            "bytes": len(self.data),
            "entries": self.entries,
            "corrections": self.corrections,
            "chain": dataclasses.asdict(self.chain),
            "checkpoint": dataclasses.asdict(self.checkpoint) if self.checkpoint else None,
        }


class ReportService:
    """Audit reports of one database."""

    def __init__(self, db: Database, *, clock: Callable[[], str] = utc_now) -> None:
        self.db = db
        self._clock = clock
        self._audit = AuditService(db)

    def close(self) -> None:
        self.db.dispose()

    def report(
        self,
        filters: Filters,
        *,
        checkpoint: Path | None = None,
        public_key: Path | None = None,
    ) -> Report:
        """Verify the log, then render the entries matching ``filters`` up to the verified
        head (UsageError for unreadable key or checkpoint files, IntegrityError for an entry
        that cannot be read)."""
        chain, signed = self._verify(checkpoint, public_key)
        entries = list(itertools.islice(self._audit.entries(filters), MAX_ENTRIES + 1))
        if len(entries) > MAX_ENTRIES:
            raise UsageError(
                f"more than {MAX_ENTRIES:,} entries match: a report holds at most that many;"
                " narrow the filter (relink audit report --help lists them)"
            )
        left_out = 0
        if chain.ok and chain.head_seq is not None:
            shown = [e for e in entries if e["seq"] <= chain.head_seq]
            left_out, entries = len(entries) - len(shown), shown
        graphs = {}
        for key in {(str(e["workflow"]), int(e["workflow_version"])) for e in entries}:
            graph = _graph(*key)
            if graph is not None:
                graphs[key] = graph
        text = render(
            ReportInput(
                entries=entries,
                chain=chain,
                checkpoint=signed,
                filters=described(filters),
                graphs=graphs,
                generated_at=self._clock(),
                generator=f"relink {_version()}",
                left_out=left_out,
            ),
            visible=printable,
        )
        data = text.encode("utf-8")
        return Report(
            data=data,
            sha256=hashlib.sha256(data).hexdigest(),
            chain=chain,
            checkpoint=signed,
            entries=len(entries),
            corrections=len({e["workflow_id"] for e in entries if e["workflow_id"] is not None}),
        )

    def check_out(self, out: Path) -> None:
        """Refuse (UsageError) an ``--out`` that could not be written, before any work."""
        check_target(out, protect=_database_files(self.db))

    def write(self, report: Report, out: Path | None, stdout: IO[bytes]) -> None:
        """The report's bytes to ``out`` (atomically) or to ``stdout``."""
        if out is None:
            stdout.write(report.data)
            stdout.flush()
            return
        text = report.data.decode("utf-8")
        write_atomically(out, lambda stream: stream.write(text),
                         protect=_database_files(self.db))

    def _verify(
        self, checkpoint: Path | None, public_key: Path | None
    ) -> tuple[ChainCheck, CheckpointCheck | None]:
        """The chain's verification and the checkpoint's (None when none is given): the
        whole log is walked once, and once more only to tell a bad checkpoint from a bad
        chain."""
        if checkpoint is None:
            try:
                return _chain(self._audit.verify()), None
            except IntegrityError as exc:
                return ChainCheck(ok=False, problem=exc.message), None
        try:
            doc = self._audit.verify(checkpoint=checkpoint, public_key=public_key)
        except IntegrityError as exc:
            problem = exc.message
        else:
            signed = doc["checkpoint"]
            return _chain(doc), CheckpointCheck(
                ok=True, seq=signed["seq"], hash=signed["hash"], signed_at=signed["signed_at"],
                key=signed["key"],
            )
        try:
            chain = _chain(self._audit.verify())
        except IntegrityError as exc:
            chain = ChainCheck(ok=False, problem=exc.message)
            if exc.message == problem:
                return chain, CheckpointCheck(ok=False, problem="not checked: the chain"
                                                                " itself failed verification")
        return chain, CheckpointCheck(ok=False, problem=problem)


def _chain(doc: dict[str, Any]) -> ChainCheck:
    return ChainCheck(ok=True, entries=doc["entries"], head_seq=doc["head_seq"],
                      head_hash=doc["head_hash"], log_id=doc["log_id"])


def _graph(name: str, version: int) -> Graph | None:
    """The diagram data of a registered workflow version (None when it is not installed)."""
    try:
        definition = get(name, version)
    except (KeyError, DefinitionError):
        return None
    return Graph(
        name=definition.name,
        version=definition.version,
        states=tuple(str(state) for state in definition.states),
        initial=str(definition.initial),
        finals=frozenset(str(state) for state in definition.finals),
        edges=tuple((step.name, str(source), str(step.dest))
                    for step in definition.steps for source in step.sources),
    )


def _version() -> str:
    try:
        return metadata.version("relink")
    except metadata.PackageNotFoundError:
        return "(version unknown)"
