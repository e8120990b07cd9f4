"""``relink audit log`` / ``verify`` / ``keygen`` / ``checkpoint`` / ``export``: the audit log as
reviewers use it, through the engine's use cases (engine.reviews), never the ``audit`` package.
"""

import sys
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, Literal

import typer

from commands.app import (
    I64,
    Root,
    console,
    emit_json,
    group,
    guard,
    line,
    say,
    stderr,
    usage,
)
from commands.filters import (
    COUNT,
    TABLE_ROWS,
    ActionFilter,
    ActorFilter,
    InvoiceFilter,
    InvoiceOrReentered,
    OutcomeFilter,
    OutFile,
    ProjectFilter,
    SinceFilter,
    UntilFilter,
    WorkflowFilter,
    operator_filters,
)
from commands.filters import Outcome as Outcome

if TYPE_CHECKING:
    from engine.reviews import AuditService, Filters

audit_app = group("Query, verify, sign and export the audit log.")

# the choices the engine offers: `relink audit log --format` (the table, or what
# engine.reviews writes) and `relink audit export --format` (engine.reviews.FORMATS), and the
# outcomes an entry records (commands.filters.Outcome: engine.reviews.OUTCOMES);
# tests/test_cli_choices.py keeps them equal
LogFormat = Literal["table", "json", "jsonl", "csv"]
ExportFormat = Literal["jsonl", "csv", "ocsf"]

def _audit_service(options: Root) -> "AuditService":
    from engine.app import open_database
    from engine.reviews import AuditService

    return AuditService(open_database(options.settings))


@audit_app.command("log")
def log(
    ctx: typer.Context,
    workflow: WorkflowFilter = None,
    invoice: InvoiceOrReentered = None,
    project: ProjectFilter = None,
    actor: ActorFilter = None,
    action: ActionFilter = None,
    outcome: OutcomeFilter = None,
    since: SinceFilter = None,
    until: UntilFilter = None,
    fmt: Annotated[LogFormat, typer.Option(
        "--format", help="A table for people; json, jsonl or csv for tools (with --json:"
        " one JSON document, whatever the format).")] = "table",
    limit: Annotated[int | None, typer.Option(
        "--limit", metavar="N", parser=COUNT,
        help=f"At most this many entries (the table: the newest {TABLE_ROWS} unless set).",
    )] = None,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="The table with what each entry records: actor, permissions"
        " read, reason, remote calls, field-by-field changes.")] = False,
) -> None:
    """The audit history, oldest first (the table shows the newest entries).

    Example: relink audit log --invoice 9001 --verbose
    relink audit log --actor ana --since 2026-11-01 --format csv
    """
    with guard(ctx) as options, closing(_audit_service(options)) as service:
        filters = operator_filters(service, invoice, workflow=workflow, project=project,
                                   actor=actor, action=action, outcome=outcome, since=since,
                                   until=until)
        if fmt == "table" and not options.json:
            _table(options, service, filters, limit or TABLE_ROWS, verbose=verbose)
            return
        from engine.reviews import spooled  # stdout gets all entries or, on error, none

        entries = service.entries(filters, limit=limit)
        if options.json or fmt in ("json", "table"):
            spooled(lambda stream: _stream_json_entries(entries, stream), sys.stdout)
        else:
            from engine.reviews import write_entries
            from engine.terminal import for_terminal

            spooled(lambda stream: write_entries(entries, fmt, stream),
                    for_terminal(sys.stdout, fmt))


def _table(options: Root, service: "AuditService", filters: "Filters", limit: int, *,
           verbose: bool) -> None:
    """The newest ``limit`` entries as a table, oldest first, saying how many there are in all
    when there are more, and saying so when none match."""
    from commands.render import audit_table

    out = console(options)
    rows = list(service.entries(filters, limit=limit + 1, newest_first=True))
    if not rows:
        empty = filters == type(filters)()
        out.print("The audit log is empty." if empty else "No audit entries match.")
        return
    audit_table(out, list(reversed(rows[:limit])), verbose=verbose)
    if len(rows) > limit:
        total = service.count(filters)
        out.print(f"Showing the newest {limit} of {total} entries (--limit {total} shows all).",
                  style="dim")


@audit_app.command("show")
def show_entry(
    ctx: typer.Context,
    seq: Annotated[int, typer.Argument(metavar="SEQ", parser=I64,
                                       help="The entry's seq (audit log lists them).")],
) -> None:
    """One audit entry in full: actor, permissions read, reason, remote calls, the
    field-by-field difference, and its hashes.

    Example: relink audit show 4
    """
    with guard(ctx) as options:
        with closing(_audit_service(options)) as service:
            entry = service.entry(seq)
        if options.json:
            emit_json(entry)
            return
        from commands.render import entry_view

        entry_view(console(options), entry)


def _stream_json_entries(entries: Iterable[dict[str, Any]], stream: IO[str]) -> int:
    """``{"entries": [...]}`` written entry by entry, so memory stays flat."""
    import json

    from engine.terminal import terminal_safe_json

    stream.write('{"entries": [')
    count = 0
    for count, entry in enumerate(entries, 1):
        text = terminal_safe_json(json.dumps(entry, ensure_ascii=False))
        stream.write((", " if count > 1 else "") + text)
    stream.write("]}\n")
    return count


@audit_app.command("verify")
def verify(
    ctx: typer.Context,
    checkpoint: Annotated[Path | None, typer.Option(
        "--checkpoint", help="Signed checkpoint file.")] = None,
    public_key: Annotated[Path | None, typer.Option(
        "--public-key", help="Its public key file.")] = None,
    since_checkpoint: Annotated[Path | None, typer.Option(
        "--since-checkpoint",
        help="Signed checkpoint file: check it and only the entries after it.")] = None,
) -> None:
    """Check the hash chain (and a signed checkpoint); exit 5 naming the first bad entry.

    Example: relink audit verify
    relink audit verify --checkpoint cp.json --public-key key.pub
    """
    with guard(ctx) as options:
        if checkpoint is not None and since_checkpoint is not None:
            raise usage("--checkpoint and --since-checkpoint cannot be combined")
        if (checkpoint is None and since_checkpoint is None) != (public_key is None):
            raise usage("--checkpoint (or --since-checkpoint) and --public-key go together")
        with closing(_audit_service(options)) as service:
            doc = service.verify(checkpoint=checkpoint, public_key=public_key,
                                 since_checkpoint=since_checkpoint)
        if options.json:
            emit_json(doc)
        elif doc.get("since_checkpoint"):
            console(options).print(
                f"OK: checkpoint at seq {doc['checkpoint']['seq']} verified; the"
                f" {doc['entries']} entries after it intact, head {doc['head_seq']}.",
                style="green")
        else:
            text = f"OK: {doc['entries']} entries, chain intact, head {doc['head_seq']}"
            if doc.get("checkpoint"):
                text += f"; checkpoint at seq {doc['checkpoint']['seq']} verified"
            if doc.get("states"):
                text += (f"; {doc['states']['corrections']} corrections in the state their"
                         " history leads to")
            console(options).print(text + ".", style="green")


@audit_app.command("keygen")
def keygen(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(
        "--out", help="Private key file; the public key goes to KEYFILE.pub.")],
) -> None:
    """Create an Ed25519 key pair for signing checkpoints.

    Example: relink audit keygen --out key
    """
    with guard(ctx) as options:
        from engine.outfile import out_path
        from engine.reviews import generate_keys

        if out_path(out) is None:
            raise usage("--out -: keygen writes two files (KEYFILE and KEYFILE.pub); give a path")
        private, public = generate_keys(out)
        doc = {"private_key": str(private), "public_key": str(public)}
        if options.json:
            emit_json(doc)
        else:
            say(f"Wrote {line(str(private))} (keep it secret, mode 0600) and"
                f" {line(str(public))}.")


@audit_app.command("checkpoint")
def checkpoint(
    ctx: typer.Context,
    key: Annotated[Path, typer.Option(
        "--key", help="Ed25519 private key file (audit keygen).")],
    out: OutFile = None,
) -> None:
    """Sign the current head of the log.

    Example: relink audit checkpoint --key key --out cp.json
    """
    with guard(ctx) as options:
        from engine.outfile import out_path

        target = out_path(out)
        with closing(_audit_service(options)) as service:
            doc = service.checkpoint(key, out=target)
        if target is not None:
            if options.json:
                emit_json(doc)
            else:
                say(f"Checkpoint of seq {doc['seq']} written to {line(str(target))}.")
        else:
            import json

            sys.stdout.write(json.dumps(doc, indent=2) + "\n")


@audit_app.command("export")
def export(
    ctx: typer.Context,
    fmt: Annotated[ExportFormat, typer.Option(
        "--format", help="JSON lines, CSV, or OCSF events for a SIEM.")],
    out: OutFile = None,
    workflow: WorkflowFilter = None,
    invoice: InvoiceOrReentered = None,
    project: ProjectFilter = None,
    actor: ActorFilter = None,
    action: ActionFilter = None,
    outcome: OutcomeFilter = None,
    since: SinceFilter = None,
    until: UntilFilter = None,
) -> None:
    """Stream entries for reviewers and SIEMs (memory stays flat).

    With --json: to --out FILE the export, and on stdout what was written; to stdout one JSON
    document holding the exported lines ({"format", "count", "entries" or for ocsf "events"};
    CSV rows as objects).

    Example: relink audit export --format ocsf --out audit.ocsf.jsonl --project 101
    """
    with guard(ctx) as options:
        from engine.outfile import out_path

        target = out_path(out)
        with closing(_audit_service(options)) as service:
            filters = operator_filters(service, invoice, workflow=workflow, project=project,
                                       actor=actor, action=action, outcome=outcome,
                                       since=since, until=until)
            if options.json and target is None:
                _export_as_json(service, filters, fmt)
                return
            count = service.export(filters, fmt, target)
        if target is not None and options.json:
            emit_json({"out": str(target), "format": fmt, "count": count})
        elif target is not None:
            stderr(f"Exported {count} entries to {line(str(target))}.")


def _export_as_json(service: "AuditService", filters: "Filters", fmt: str) -> None:
    """``--json audit export`` to stdout: the export, checked as it is written, as one JSON
    document (written once every entry passed; memory stays flat)."""
    import csv
    import json
    import tempfile

    from engine.reviews import SPOOL_BYTES
    from engine.terminal import terminal_safe_json

    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+", encoding="utf-8",
                                       newline="") as staged:
        count = service.export(filters, fmt, stream=staged)
        staged.seek(0)
        items: Iterable[str] = (
            (json.dumps(row, ensure_ascii=False) for row in csv.DictReader(staged))
            if fmt == "csv" else (text.rstrip("\r\n") for text in staged if text.strip())
        )
        key = "events" if fmt == "ocsf" else "entries"
        sys.stdout.write(f'{{"format": {json.dumps(fmt)}, "count": {count}, "{key}": [')
        for number, text in enumerate(items):
            sys.stdout.write((", " if number else "") + terminal_safe_json(text))
        sys.stdout.write("]}\n")


@audit_app.command("report")
def report(
    ctx: typer.Context,
    out: OutFile = None,
    workflow: WorkflowFilter = None,
    invoice: InvoiceFilter = None,
    project: ProjectFilter = None,
    actor: ActorFilter = None,
    since: SinceFilter = None,
    until: UntilFilter = None,
    checkpoint: Annotated[Path | None, typer.Option(
        "--checkpoint", help="Signed checkpoint file to verify as well.")] = None,
    public_key: Annotated[Path | None, typer.Option(
        "--public-key", help="Its public key file.")] = None,
) -> None:
    """One self-contained HTML report for an auditor; prints its SHA-256 (exit 5 if the log
    fails verification: the report, still written, says so)."""
    with guard(ctx) as options:
        from commands.datafile import audit_filters
        from engine.app import open_database
        from engine.outfile import out_path
        from engine.report import ReportService

        if (checkpoint is None) != (public_key is None):
            raise usage("--checkpoint and --public-key go together")
        target = out_path(out)
        if target is None and options.json:
            raise usage("--json prints a JSON document on stdout: give the report --out FILE")
        filters = audit_filters(workflow=workflow, invoice=invoice, project=project,
                                actor=actor, since=since, until=until)
        with closing(ReportService(open_database(options.settings))) as service:
            if target is not None:
                service.check_out(target)
            result = service.report(filters, checkpoint=checkpoint, public_key=public_key)
            service.write(result, target, sys.stdout.buffer)
        name = "-" if target is None else str(target)
        if options.json:
            emit_json(result.document() | {"out": name})
        elif target is None:
            stderr(f"{result.sha256}  -")
        else:
            # sha256sum's format, so `sha256sum -c` checks the file against the line
            say(f"{result.sha256}  {line(name)}")
            entries = f"{result.entries} entr{'y' if result.entries == 1 else 'ies'}"
            corrections = f"{result.corrections} correction{'' if result.corrections == 1 else 's'}"
            stderr(f"Wrote {line(name)}: {entries} in {corrections};"
                   f" {'verified' if result.ok else 'verification FAILED'}.")
        if not result.ok:
            if not options.json:
                stderr(f"Error: {line(result.problem or 'verification failed')}"
                       " (the report says so).")
            raise typer.Exit(5)
