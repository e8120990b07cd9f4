"""``relink audit log`` / ``verify`` / ``keygen`` / ``checkpoint`` / ``export``: the audit log as
reviewers use it, through the engine's use cases (engine.reviews), never the ``audit`` package.
"""

import sys
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, Literal

import typer

from commands.app import I64, Root, console, emit_json, group, guard, line, say, stderr, usage

if TYPE_CHECKING:
    from engine.reviews import AuditService

audit_app = group("Query, verify, sign and export the audit log.")

# the choices the engine offers: `relink audit log --format` (the table, or what
# engine.reviews writes), `relink audit export --format` (engine.reviews.FORMATS) and the
# outcomes an entry records (engine.reviews.OUTCOMES); tests/test_cli_choices.py keeps them equal
LogFormat = Literal["table", "json", "jsonl", "csv"]
ExportFormat = Literal["jsonl", "csv", "ocsf"]
Outcome = Literal["in_flight", "succeeded", "refused", "failed"]

FILTER_HELP = "ISO 8601 date or date-time, UTC"
OUT_HELP = ("Write here (atomically; only a new or regular file is replaced) instead of stdout;"
            " - is stdout.")

# the filters of `audit log` and `audit export`
WorkflowFilter = Annotated[int | None, typer.Option("--workflow", help="Correction id.",
                                                    parser=I64)]
InvoiceFilter = Annotated[int | None, typer.Option("--invoice", help="Procore invoice id.",
                                                   parser=I64)]
ProjectFilter = Annotated[int | None, typer.Option("--project", help="Procore project id.",
                                                   parser=I64)]
ActorFilter = Annotated[str | None, typer.Option("--actor", help="Procore login.")]
ActionFilter = Annotated[str | None, typer.Option("--action",
                                                  help="start, a step name, resume.")]
OutcomeFilter = Annotated[Outcome | None, typer.Option("--outcome",
                                                       help="Only entries with this outcome.")]
SinceFilter = Annotated[str | None, typer.Option("--since", help=f"From ({FILTER_HELP}).")]
UntilFilter = Annotated[str | None, typer.Option(
    "--until", help=f"Before ({FILTER_HELP}); a date alone includes that whole day.")]
OutFile = Annotated[Path | None, typer.Option("--out", help=OUT_HELP)]


def _audit_service(options: Root) -> "AuditService":
    from engine.app import open_database
    from engine.reviews import AuditService

    return AuditService(open_database(options.settings))


@audit_app.command("log")
def log(
    ctx: typer.Context,
    workflow: WorkflowFilter = None,
    invoice: InvoiceFilter = None,
    project: ProjectFilter = None,
    actor: ActorFilter = None,
    action: ActionFilter = None,
    outcome: OutcomeFilter = None,
    since: SinceFilter = None,
    until: UntilFilter = None,
    fmt: Annotated[LogFormat, typer.Option(
        "--format", help="A table for people; json, jsonl or csv for tools.")] = "table",
    limit: Annotated[int | None, typer.Option(
        "--limit", min=1, max=2**63 - 1,
        help="At most this many entries (table: newest 50 unless set).")] = None,
) -> None:
    """The audit history, oldest first (the table shows the newest entries)."""
    with guard(ctx) as options:
        from commands.datafile import audit_filters

        filters = audit_filters(workflow=workflow, invoice=invoice, project=project, actor=actor,
                                action=action, outcome=outcome, since=since, until=until)
        with closing(_audit_service(options)) as service:
            if fmt == "table" and not options.json:
                from commands.render import audit_table

                rows = list(service.entries(filters, limit=limit or 50, newest_first=True))
                audit_table(console(options), list(reversed(rows)))
                return
            from engine.reviews import spooled  # stdout gets all entries or, on error, none

            entries = service.entries(filters, limit=limit)
            if fmt in ("json", "table"):
                spooled(lambda stream: _stream_json_entries(entries, stream), sys.stdout)
            else:
                from engine.reviews import write_entries
                from engine.terminal import for_terminal

                spooled(lambda stream: write_entries(entries, fmt, stream),
                        for_terminal(sys.stdout, fmt))


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
) -> None:
    """Check the hash chain (and a signed checkpoint); exit 5 naming the first bad entry."""
    with guard(ctx) as options:
        if (checkpoint is None) != (public_key is None):
            raise usage("--checkpoint and --public-key go together")
        with closing(_audit_service(options)) as service:
            doc = service.verify(checkpoint=checkpoint, public_key=public_key)
        if options.json:
            emit_json(doc)
        else:
            text = f"OK: {doc['entries']} entries, chain intact, head {doc['head_seq']}"
            if doc.get("checkpoint"):
                text += f"; checkpoint at seq {doc['checkpoint']['seq']} verified"
            console(options).print(text + ".", style="green")


@audit_app.command("keygen")
def keygen(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(
        "--out", help="Private key file; the public key goes to KEYFILE.pub.")],
) -> None:
    """Create an Ed25519 key pair for signing checkpoints."""
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
    """Sign the current head of the log."""
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
    invoice: InvoiceFilter = None,
    project: ProjectFilter = None,
    actor: ActorFilter = None,
    action: ActionFilter = None,
    outcome: OutcomeFilter = None,
    since: SinceFilter = None,
    until: UntilFilter = None,
) -> None:
    """Stream entries for reviewers and SIEMs (memory stays flat)."""
    with guard(ctx) as options:
        from commands.datafile import audit_filters
        from engine.outfile import out_path

        target = out_path(out)
        filters = audit_filters(workflow=workflow, invoice=invoice, project=project, actor=actor,
                                action=action, outcome=outcome, since=since, until=until)
        with closing(_audit_service(options)) as service:
            count = service.export(filters, fmt, target)
        if target is not None:
            stderr(f"Exported {count} entries to {line(str(target))}.")
