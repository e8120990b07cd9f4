"""The correction commands: ``init``, ``start``, ``advance``, ``resume``, ``show``, ``list``.

Each parses its arguments, calls one use case of :mod:`engine.service` and renders the outcome;
the engine is imported only when a command runs.
"""

from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from commands.app import (
    DEFAULT_WORKFLOW,
    I64,
    JSON_ID,
    Root,
    console,
    emit_json,
    guard,
    line,
    render_outcome,
    say,
    usage,
)

if TYPE_CHECKING:
    from engine.service import CorrectionService

CorrectionId = Annotated[int, typer.Argument(metavar="ID", help="The correction id.",
                                             parser=JSON_ID)]


def _service(options: Root, workflow: str = DEFAULT_WORKFLOW) -> "CorrectionService":
    from engine.app import correction_service

    return correction_service(options.settings, workflow=workflow)


def _reader(options: Root) -> "CorrectionService":
    """The correction service for read-only use cases: no credentials, no remote system."""
    from engine.app import read_only_service

    return read_only_service(options.settings, workflow=DEFAULT_WORKFLOW)


def init(ctx: typer.Context) -> None:
    """Create or upgrade the database schema (safe to run again)."""
    with guard(ctx) as options:
        from engine.app import open_database
        from engine.db import redact

        with closing(open_database(options.settings, check=False)) as db:
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
    subject_id: Annotated[int, typer.Argument(
        metavar="SUBJECT_ID", parser=JSON_ID,
        help="The Procore id of what to correct: an invoice (requisition) for"
        " subcontractor-invoice, a commitment for commitment.")],
    project: Annotated[int, typer.Option("--project", help="The Procore project id.",
                                         parser=JSON_ID)],
    reason: Annotated[str, typer.Option("--reason", help="Why it is being corrected.")],
    workflow: Annotated[str, typer.Option(
        "--workflow", help="The correction procedure (`relink workflows list`).",
    )] = DEFAULT_WORKFLOW,
) -> None:
    """Start a correction; prints its id.

    Corrects an exported invoice, or with --workflow another subject (a commitment).
    """
    with guard(ctx) as options:
        if not reason.strip():
            raise usage("--reason must not be empty")
        with closing(_service(options, workflow=workflow)) as service:
            render_outcome(options, service.start(str(subject_id), project, reason))


def advance(
    ctx: typer.Context,
    workflow_id: CorrectionId,
    step: Annotated[str, typer.Argument(help="delete-in-erp, confirm-erp-deletion, unlink, "
                                        "delete-in-procore, reenter or cancel.")],
    reason: Annotated[str | None, typer.Option("--reason",
                                               help="Why (kept in the audit log).")] = None,
    data: Annotated[Path | None, typer.Option(
        "--data", help="JSON or TOML file of corrected requisition fields (reenter).",
    )] = None,
) -> None:
    """Run one step of a correction."""
    with guard(ctx) as options:
        from commands.datafile import read_data_file

        fields = read_data_file(data) if data is not None else None
        with closing(_service(options)) as service:
            render_outcome(options, service.advance(workflow_id, step, reason=reason,
                                                    data=fields))


def resume(ctx: typer.Context, workflow_id: CorrectionId) -> None:
    """Settle a step left in flight by a crash: the remote systems decide."""
    with guard(ctx) as options, closing(_service(options)) as service:
        render_outcome(options, service.resume(workflow_id))


def show(
    ctx: typer.Context,
    workflow_id: Annotated[int, typer.Argument(metavar="ID", help="The correction id.",
                                               parser=I64)],
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
        "--state", help="Only corrections in this state.")] = None,
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
        from commands.datafile import parse_duration

        with closing(_reader(options)) as service:
            items = service.list(state=state, project_id=project,
                                 stale=parse_duration(stale) if stale else None, limit=limit,
                                 workflow=workflow)
        if options.json:
            emit_json({"items": items})
            return
        from commands.render import workflow_table

        workflow_table(console(options), items)
