"""Operators at scale: ``relink invoices`` (find them in Procore), ``relink batch`` (many
corrections at once: ``start``, ``advance``, ``run``, ``show``) and ``relink start --cascade``
(a plan unwinding the later invoices of a commitment). Each parses, calls one use case of
:mod:`engine.batch` and renders; the engine is imported only when a command runs."""

from __future__ import annotations

import datetime as dt
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from commands.app import (
    DEFAULT_WORKFLOW,
    I64,
    JSON_ID,
    Root,
    console,
    emit_json,
    group,
    guard,
    known_state,
    known_step,
    stderr,
    usage,
)

if TYPE_CHECKING:
    from engine.batch import BatchService
    from engine.service import CorrectionService

batch_app = group("Many corrections at once: start a batch, run it, follow it.")

BatchId = Annotated[int, typer.Argument(metavar="BATCH", help="The batch id.", parser=JSON_ID)]
Concurrency = Annotated[int | None, typer.Option(
    "--concurrency", min=1, max=32,
    help="Corrections worked on at once by this process (default 8; the pacer keeps every"
    " call within the remotes' rate limits).")]
Jsonl = Annotated[bool, typer.Option("--jsonl", help="Print each event as one JSON line as it"
                                     " happens, then the summary.")]
Project = Annotated[int | None, typer.Option("--project", help="The Procore project id.",
                                             parser=JSON_ID)]
Commitment = Annotated[int | None, typer.Option("--commitment", help="Only this commitment.",
                                                parser=JSON_ID)]
Number = Annotated[str | None, typer.Option("--number", help="Only this invoice number.")]
Status = Annotated[str | None, typer.Option("--status", help="Only this Procore status (e.g."
                                            " approved).")]
Since = Annotated[str | None, typer.Option("--since", metavar="DATE",
                                           help="Only invoices billed on or after this date"
                                           " (YYYY-MM-DD).")]
Synced = Annotated[bool | None, typer.Option("--synced/--not-synced",
                                             help="Only invoices synced with the ERP (or not).",
                                             show_default=False)]


def _batches(options: Root, workflow: str = DEFAULT_WORKFLOW) -> BatchService:
    from engine.app import correction_service
    from engine.batch import BatchService

    return BatchService(correction_service(options.settings, workflow=workflow))


def _filters(commitment: int | None, number: str | None, synced: bool | None,
             status: str | None, since: str | None) -> dict[str, Any]:
    if since is not None:
        try:
            since = dt.date.fromisoformat(since).isoformat()
        except ValueError:
            raise usage(f"--since {since!r} is not a date (YYYY-MM-DD)") from None
    if number is not None and not number.strip():
        raise usage("--number must not be empty")
    filters = {"commitment": commitment, "number": number, "synced": synced,
               "status": status, "since": since}
    return {name: value for name, value in filters.items() if value is not None}


# relink invoices ---------------------------------------------------------------------------


def invoices(
    ctx: typer.Context,
    project: Annotated[int, typer.Option("--project", help="The Procore project id.",
                                         parser=JSON_ID)],
    commitment: Commitment = None,
    number: Number = None,
    synced: Synced = None,
    status: Status = None,
    since: Since = None,
) -> None:
    """Invoices in Procore (every page), with their ERP link and any open correction.

    Example: relink invoices --project 102 --synced --commitment 5705
    """
    with guard(ctx) as options:
        from engine.app import correction_service
        from engine.finding import find

        filters = _filters(commitment, number, synced, status, since)
        with closing(correction_service(options.settings, workflow=DEFAULT_WORKFLOW)) as svc:
            found = find(svc, project, filters)
        if options.json:
            emit_json({"items": found, "count": len(found)})
            return
        _invoice_table(options, found, project)


def _invoice_table(options: Root, found: list[dict[str, Any]], project: int) -> None:
    from commands.layout import Column, table
    from engine.terminal import printable

    out = console(options)
    if not found:
        out.print(f"No invoices of project {project} match.")
        return
    columns = [Column("id", justify="right"), Column("#", justify="right"),
               Column("number", limit=24), Column("commitment", justify="right"),
               Column("status"), Column("billed"), Column("ERP link", limit=20),
               Column("correction", justify="right")]
    rows = [[printable(item["id"]), printable(item.get("number") or "—"),
             printable(item.get("invoice_number") or "—"),
             printable(item.get("commitment_id") or "—"), printable(item.get("status") or "—"),
             printable(item.get("billing_date") or "—"),
             printable(item.get("origin_id") or "not synced"),
             printable(f"open #{item['correction']}" if item.get("correction") else "—")]
            for item in found]
    table(out, columns, rows)
    out.print(f"{len(found)} invoice{'s' if len(found) != 1 else ''} of project {project}.")


# relink batch ------------------------------------------------------------------------------


@batch_app.command("start")
def start_batch(
    ctx: typer.Context,
    source: Annotated[Path | None, typer.Option(
        "--from", metavar="FILE", help="CSV or JSON rows: id or number, project, reason,"
        " data.")] = None,
    project: Project = None,
    commitment: Commitment = None,
    number: Number = None,
    synced: Synced = None,
    status: Status = None,
    since: Since = None,
    reason: Annotated[str | None, typer.Option(
        "--reason", help="Why (for every row without a reason of its own).")] = None,
    as_is: Annotated[bool, typer.Option(
        "--as-is", help="Re-enter each invoice without a data column unchanged (its"
        " snapshot).")] = False,
) -> None:
    """Create a batch from a file (--from) or from a query (--project and filters).

    Example: relink batch start --from invoices.csv --reason "wrong period" --as-is
    relink batch start --project 102 --commitment 5705 --synced --reason "re-export"
    """
    with guard(ctx) as options:
        if (source is None) == (project is None):
            raise usage("give --from FILE, or --project P with filters (not both)")
        if source is not None and any(value is not None for value in (
                commitment, number, synced, status, since)):
            raise usage("the filters (--commitment, --number, --synced, --status, --since)"
                        " go with --project, not --from")
        with closing(_batches(options)) as batches:
            if source is not None:
                from commands.batchfile import read_rows

                rows = read_rows(source)
                doc = batches.create(rows, reason=reason, as_is=as_is, source=str(source))
            else:
                assert project is not None
                filters = _filters(commitment, number, synced, status, since)
                doc = batches.create_from_query(project, filters, reason=reason or "",
                                                as_is=as_is)
        _created(options, doc)


def _created(options: Root, doc: dict[str, Any]) -> None:
    if options.json:
        emit_json(doc)
        return
    from commands.progress import batch_table

    out = console(options)
    batch_table(out, doc)
    out.print(f"Next: relink batch run {doc['batch']['id']}")


@batch_app.command("run")
def run_batch(
    ctx: typer.Context,
    batch_id: BatchId,
    until: Annotated[str | None, typer.Option(
        "--until", metavar="STATE", parser=known_state,
        help="Drive each correction to this state (default: the workflow's goal,"
        " Reentered).")] = None,
    concurrency: Concurrency = None,
    jsonl: Jsonl = False,
) -> None:
    """Run every step of each correction in order, each stopped at its first refusal.

    Run again (after Ctrl-C, a crash, or in several processes at once) to continue.

    Example: relink batch run 1
    relink batch run 1 --until DeletedInProcore --concurrency 4 --jsonl
    """
    with guard(ctx) as options:
        _run(options, batch_id, until=until, step=None, concurrency=concurrency, jsonl=jsonl)


@batch_app.command("advance")
def advance_batch(
    ctx: typer.Context,
    batch_id: BatchId,
    step: Annotated[str, typer.Argument(help="The step to run on each correction that allows"
                                        " it (or start).")],
    concurrency: Concurrency = None,
    jsonl: Jsonl = False,
) -> None:
    """Run one step on every correction of the batch that allows it.

    Example: relink batch advance 1 delete-in-erp
    """
    with guard(ctx) as options:
        step = step if step == "start" else known_step(step)
        _run(options, batch_id, until=None, step=step, concurrency=concurrency, jsonl=jsonl)


@batch_app.command("show")
def show_batch(ctx: typer.Context, batch_id: Annotated[int, typer.Argument(
        metavar="BATCH", help="The batch id.", parser=I64)]) -> None:
    """A batch: each correction's state, status and last message.

    Example: relink batch show 1
    """
    with guard(ctx) as options:
        from engine.app import read_only_service
        from engine.batch import BatchService

        with closing(read_only_service(options.settings, workflow=DEFAULT_WORKFLOW)) as svc:
            doc = BatchService(svc).show(batch_id)
        if options.json:
            emit_json(doc)
            return
        from commands.progress import batch_table

        batch_table(console(options), doc)


def _run(options: Root, batch_id: int, *, until: str | None, step: str | None,
         concurrency: int | None, jsonl: bool) -> None:
    from engine.batch import DEFAULT_CONCURRENCY

    with closing(_batches(options)) as batches:
        batch = batches.load(batch_id)
        batches.service.workflow = batch.workflow
        total = sum(item["status"] in ("pending", "failed", "stopped")
                    and item["subject_id"] is not None
                    for item in batches.show(batch_id)["items"])
        doc = _running(options, batches, batch_id, f"Batch {batch_id}", total, jsonl,
                       until=until, step=step, concurrency=concurrency or DEFAULT_CONCURRENCY)
    _exit(doc)


def _running(options: Root, batches: BatchService, batch_id: int, title: str, total: int,
             jsonl: bool, **how: Any) -> dict[str, Any]:
    from commands.progress import BatchProgress

    with BatchProgress(options, title=title, total=total, jsonl=jsonl) as progress:
        doc = batches.run(batch_id, emit=progress, **how)
    progress.summary(doc)
    return doc


def _exit(doc: dict[str, Any]) -> None:
    """0 when everything got where it was sent; 130 interrupted; 3 when a remote system failed
    (run again); 1 when a correction was refused (audited)."""
    if doc.get("interrupted"):
        raise typer.Exit(130)
    if doc["batch"]["kind"] == "plan":
        if doc["batch"]["status"] != "finished":
            raise typer.Exit(3 if doc.get("outcome") == "failed" else 1)
        return
    counts = doc["counts"]
    if counts.get("failed"):
        raise typer.Exit(3)
    if counts.get("stopped"):
        raise typer.Exit(1)


# relink start --cascade --------------------------------------------------------------------


def cascade(options: Root, service: CorrectionService, subject_id: str, project: int,
            reason: str, *, data: dict[str, Any] | None, dry_run: bool, yes: bool,
            jsonl: bool) -> None:
    """Plan the correction of ``subject_id`` with the later subjects unwound first; show the
    plan; with --yes (or the operator's yes on a terminal) record and run it."""
    import sys

    from engine.batch import BatchService
    from engine.plan import create, preview

    batches = BatchService(service)  # the caller closes the service
    plan = preview(batches, subject_id, project)
    if dry_run:
        if options.json:
            emit_json({"dry_run": True, **plan})
        else:
            _show_plan(options, plan, stderr_=False)
        return
    if data is None:
        raise usage(f"--cascade corrects {plan['noun']} {subject_id}: give --data FILE with"
                    " the corrected fields (--dry-run shows the plan without it)")
    if not options.json:
        _show_plan(options, plan, stderr_=True)
    if not yes:
        if options.json or not sys.stdin.isatty():
            raise usage(f"the plan changes {len(plan['unwind']) + 1} {plan['noun']}s in"
                        " Procore and the ERP: confirm it with --yes")
        if not typer.confirm("Run this plan?", default=False, err=True):
            stderr("Nothing done.")
            raise typer.Exit(1)
    created = create(batches, subject_id, project, reason=reason, data=data)
    plan_id = created["batch"]["id"]
    doc = _running(options, batches, plan_id, f"Plan {plan_id}",
                   len(plan["operations"]), jsonl, until=None, step=None)
    _exit(doc)


def _show_plan(options: Root, plan: dict[str, Any], *, stderr_: bool) -> None:
    from engine.terminal import rich_safe

    out = console(options, stderr=stderr_)
    noun = plan["noun"]
    target = plan["target"]
    out.print(rich_safe(f"Plan: correct {noun} {target['id']} ({target['label']}) in project"
                        f" {target['project_id']}; Procore deletes only the most recent"
                        f" {noun} of a commitment, so {len(plan['unwind'])} later"
                        f" {noun}{'s' if len(plan['unwind']) != 1 else ''} come first."))
    words = {"unwind": "unwind", "target": "correct", "reenter": "re-enter"}
    for step in plan["operations"]:
        steps = step["steps"] if step["role"] == "reenter" else ["start", *step["steps"]]
        said = f"{words[step['role']]} {noun} {step['subject_id']} ({step['label']})"
        if step["role"] == "reenter":
            said += " as it was"
        out.print(rich_safe(f"  {step['order']}. {said}: {', '.join(steps)}"))
