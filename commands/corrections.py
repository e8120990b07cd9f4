"""The correction commands: ``init``, ``start``, ``advance``, ``resume``, ``show``, ``list``.

Each parses its arguments, calls one use case of :mod:`engine.service` and renders the outcome;
the engine is imported only when a command runs.
"""

from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from commands import completion
from commands.app import (
    DEFAULT_WORKFLOW,
    I64,
    JSON_ID,
    Root,
    console,
    emit_json,
    guard,
    known_state,
    known_step,
    line,
    render_outcome,
    say,
    stderr,
    usage,
    waiter,
)

if TYPE_CHECKING:
    from rich.console import Console

    from engine.service import CorrectionService
    from workflows.definition import Previewed

CorrectionId = Annotated[int, typer.Argument(metavar="ID", help="The correction id.",
                                             parser=JSON_ID,
                                             autocompletion=completion.correction_ids)]


def _service(options: Root, workflow: str = DEFAULT_WORKFLOW) -> "CorrectionService":
    from commands.waiting import remote_waits
    from engine.app import correction_service

    service = correction_service(options.settings, workflow=workflow,
                                 on_wait=remote_waits(options))
    service.waiter = waiter(options)
    return service


def _reader(options: Root) -> "CorrectionService":
    """The correction service for read-only use cases: no credentials, no remote system."""
    from engine.app import read_only_service

    return read_only_service(options.settings, workflow=DEFAULT_WORKFLOW)


def init(ctx: typer.Context) -> None:
    """Create or upgrade the database schema (safe to run again)."""
    with guard(ctx) as options:
        from engine.app import open_database
        from engine.db import redact

        with closing(open_database(options.settings, check=False, create=True)) as db:
            before, after = db.upgrade()
        doc = {"database": redact(db.url), "from": before, "to": after}
        if options.json:
            emit_json(doc)
        elif before == after:
            say(f"Schema already at {after} ({line(doc['database'])}).")
        else:
            say(f"Schema {'created' if before is None else 'upgraded'} at {after}"
                f" ({line(doc['database'])}).")


def start(
    ctx: typer.Context,
    project: Annotated[int, typer.Option("--project", help="The Procore project id.",
                                         parser=JSON_ID)],
    reason: Annotated[str, typer.Option("--reason", help="Why it is being corrected.")],
    subject_id: Annotated[int | None, typer.Argument(
        metavar="SUBJECT_ID", parser=JSON_ID,
        help="The Procore id of what to correct: an invoice (requisition) for"
        " subcontractor-invoice, a commitment for commitment.")] = None,
    workflow: Annotated[str, typer.Option(
        "--workflow", help="The correction procedure (`relink workflows list`).",
    )] = DEFAULT_WORKFLOW,
    number: Annotated[str | None, typer.Option(
        "--number", help="The invoice number instead of its id (several matches: refused,"
        " listed).")] = None,
    cascade: Annotated[bool, typer.Option(
        "--cascade", help="Plan it with the later invoices of its commitment unwound first and"
        " re-entered as they were after it.")] = False,
    data: Annotated[Path | None, typer.Option(
        "--data", help="With --cascade: the corrected fields of this invoice (JSON or TOML).",
    )] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="With --cascade: only show the"
                                          " plan.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="With --cascade: run the plan"
                                      " without asking.")] = False,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="With --cascade: each event as one"
                                        " JSON line.")] = False,
) -> None:
    """Start a correction; prints its id.

    Corrects an exported invoice, or with --workflow another subject (a commitment).
    """
    with guard(ctx) as options:
        if (subject_id is None) == (number is None):
            raise usage("give the SUBJECT_ID or --number (one of them)")
        if not reason.strip():
            raise usage("--reason must not be empty")
        if not cascade and (data is not None or dry_run or yes or jsonl):
            raise usage("--data, --dry-run, --yes and --jsonl go with --cascade here"
                        " (`relink advance ID reenter --data FILE` corrects one invoice)")
        with closing(_service(options, workflow=workflow)) as service:
            if number is not None:
                from engine.finding import resolve

                subject = resolve(service, number, project, reason or None)
            else:
                subject = str(subject_id)
            if cascade:
                from commands.batch import cascade as run_cascade
                from commands.datafile import read_data_file

                fields = read_data_file(data) if data is not None else None
                run_cascade(options, service, subject, project, reason, data=fields,
                            dry_run=dry_run, yes=yes, jsonl=jsonl)
                return
            render_outcome(options, service.start(subject, project, reason))


def advance(
    ctx: typer.Context,
    workflow_id: CorrectionId,
    step: Annotated[str, typer.Argument(metavar="STEP",
                                        help="delete-in-erp, confirm-erp-deletion, unlink, "
                                        "delete-in-procore, reenter, cancel or abandon (a"
                                        " commitment's: `relink workflows show commitment`).",
                                        parser=known_step,
                                        autocompletion=completion.next_steps)],
    reason: Annotated[str | None, typer.Option("--reason",
                                               help="Why (kept in the audit log).")] = None,
    data: Annotated[Path | None, typer.Option(
        "--data", help="JSON or TOML file of corrected fields (reenter, correct).",
    )] = None,
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="Do not ask before writing the corrected fields.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Only show what the data file changes; run nothing.")] = False,
    as_is: Annotated[bool, typer.Option(
        "--as-is", help="Write the snapshot unchanged (reenter without --data, or data that"
        " changes nothing).")] = False,
) -> None:
    """Run one step of a correction.

    A step taking --data shows the field-by-field difference first and, on a terminal, asks
    before writing (--yes to skip, --dry-run to only show it).

    Example: relink advance 1 reenter --data corrected.json
    """
    with guard(ctx) as options:
        from commands.datafile import read_data_file

        fields = read_data_file(data) if data is not None else None
        with closing(_service(options)) as service:
            previewed = service.preview(workflow_id, step, fields, as_is=as_is)
            if previewed is not None and not _confirmed(options, previewed, yes=yes,
                                                        dry_run=dry_run):
                return
            if dry_run:
                raise usage(f"--dry-run shows what --data changes; {step} takes none")
            render_outcome(options, service.advance(workflow_id, step, reason=reason,
                                                    data=fields, as_is=as_is))


def show_changes(
    out: "Console", changes: list[dict[str, object]], warnings: tuple[str, ...]
) -> None:
    """The field-by-field difference as a table (values escaped), then the warnings."""
    from rich.table import Table

    from engine.terminal import rich_safe

    table = Table(title="What the data file changes", title_justify="left")
    table.add_column("field", no_wrap=True)
    table.add_column("before", overflow="fold")
    table.add_column("after", overflow="fold")
    for change in changes:
        table.add_row(*(rich_safe(_shown(change[key])) for key in ("field", "before", "after")))
    if changes:
        out.print(table)
    else:
        out.print("The data file changes nothing (--as-is).")
    for warning in warnings:
        out.print(rich_safe(f"Warning: {warning}."), style="yellow")


def _shown(value: object) -> str:
    return "—" if value is None else str(value)


def _confirmed(options: Root, previewed: "Previewed", *, yes: bool, dry_run: bool) -> bool:
    """Show the difference (stderr, or the JSON document for --dry-run) and whether to go on:
    --dry-run never, --yes or no terminal always, else the operator's answer."""
    import sys

    changes = previewed.changes()
    if dry_run and options.json:
        emit_json({"dry_run": True, "changes": changes, "warnings": list(previewed.warnings)})
        return False
    out = console(options, stderr=not dry_run)
    show_changes(out, changes, previewed.warnings)
    if dry_run:
        return False
    if yes or options.json or not sys.stdin.isatty():
        return True
    if not typer.confirm("Write these changes?", default=False, err=True):
        stderr("Nothing written.")
        raise typer.Exit(1)
    return True


def abandon(
    ctx: typer.Context,
    workflow_id: CorrectionId,
    reason: Annotated[str, typer.Option("--reason", help="Why it is given up (required; kept in"
                                        " the audit log).")],
) -> None:
    """Give up a correction where it stands, to the final state Abandoned, recording Procore's
    and the ERP's state as they are (nothing is written there).

    Example: relink abandon 4 --reason "Procore keeps the invoice: payments recorded"
    """
    with guard(ctx) as options:
        if not reason.strip():
            raise usage("--reason must say why the correction is given up")
        with closing(_service(options)) as service:
            render_outcome(options, service.advance(workflow_id, "abandon", reason=reason))


def approve(
    ctx: typer.Context,
    workflow_id: CorrectionId,
    step: Annotated[str, typer.Argument(metavar="STEP", help="The step to approve.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it may run (required; kept in the"
                                        " audit log).")],
) -> None:
    """Approve, as a second person, a step the policy puts under four eyes.

    The approval lets the operator who asked run the step once, within the policy's
    approval_minutes; your own request cannot be approved by you.

    Example: relink approve 3 delete-in-erp --reason "checked against the vendor statement"
    """
    with guard(ctx) as options:
        if not reason.strip():
            raise usage("--reason must say why the step may run")
        with closing(_service(options)) as service:
            render_outcome(options, service.approve(workflow_id, step, reason))


def approvals(ctx: typer.Context) -> None:
    """Steps waiting for a second person's approval, and approvals not used yet.

    Example: relink approvals
    """
    with guard(ctx) as options:
        with closing(_reader(options)) as service:
            pending = service.approvals()
        if options.json:
            emit_json({"approvals": pending})
            return
        if not pending:
            say("No approvals pending.")
            return
        from rich.table import Table

        from engine.terminal import rich_safe

        table = Table()
        for column in ("id", "step", "status", "requested by", "approver", "until"):
            table.add_column(column, no_wrap=column in ("id", "step", "status"))
        for item in pending:
            table.add_row(*(rich_safe(str(value)) for value in (
                item["id"], item["step"], item["status"], item.get("requested_by") or "—",
                item.get("approver") or "—",
                (item.get("expires_at") or "—") + (" (expired)" if item.get("expired") else ""),
            )))
        console(options).print(table)


def resume(ctx: typer.Context, workflow_id: CorrectionId) -> None:
    """Settle a step left in flight by a crash: the remote systems decide."""
    with guard(ctx) as options, closing(_service(options)) as service:
        render_outcome(options, service.resume(workflow_id))


def show(
    ctx: typer.Context,
    workflow_id: Annotated[int, typer.Argument(metavar="ID", help="The correction id.",
                                               parser=I64,
                                               autocompletion=completion.correction_ids)],
) -> None:
    """State, invoice, ERP bill, step in flight, allowed next steps and history."""
    with guard(ctx) as options:
        with closing(_reader(options)) as service:
            doc = service.show(workflow_id)
        if options.json:
            emit_json(doc)
            return
        from commands.render import show_workflow

        show_workflow(console(options), doc)


def list_(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option(
        "--state", help="Only corrections in this state (any case).",
        parser=known_state)] = None,
    project: Annotated[int | None, typer.Option("--project", help="Only this project.",
                                                parser=I64)] = None,
    stale: Annotated[str | None, typer.Option(
        "--stale", help="Open and unchanged for at least this long, e.g. 30m, 4h, 2d.",
    )] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000,
                                       help="At most this many.")] = 50,
    workflow: Annotated[str | None, typer.Option(
        "--workflow", help="Only corrections of this workflow (default: all).")] = None,
) -> None:
    """Corrections, newest first."""
    with guard(ctx) as options:
        since = None
        if stale:  # (commands.datafile brings the audit log's filters: only when needed)
            from commands.datafile import parse_duration

            since = parse_duration(stale)
        with closing(_reader(options)) as service:
            items = service.list(state=state, project_id=project, stale=since, limit=limit,
                                 workflow=workflow)
        if options.json:
            emit_json({"items": items})
            return
        from commands.render import workflow_table

        workflow_table(console(options), items)
