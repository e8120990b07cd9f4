"""The audit filters an operator types (``audit log``, ``audit export``, ``audit report``):
their options, checked as they are parsed (``--action`` against the actions entries record),
and the filters they make (:func:`operator_filters`)."""

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from commands.app import I64, integer, one_of

if TYPE_CHECKING:
    from engine.reviews import AuditService, Filters

# the outcomes an entry records (engine.reviews.OUTCOMES; tests/test_cli_choices.py)
Outcome = Literal["in_flight", "succeeded", "refused", "failed"]

FILTER_HELP = "ISO 8601 date or date-time, UTC"
OUT_HELP = ("Write here (atomically; only a new or regular file is replaced) instead of stdout;"
            " - is stdout.")
# the key under which a correction records the id it re-entered its invoice as
REENTERED_AS = "new_invoice_id"


def known_action(value: str | None) -> str | None:
    """``--action``: an action entries record (any case), else a usage error naming the
    closest and every action."""
    if value is None:
        return None
    from engine.reviews import vocabulary

    return one_of(value, vocabulary().actions, "an action entries record", "actions")


# the filters of `audit log` and `audit export`
WorkflowFilter = Annotated[int | None, typer.Option(
    "--workflow", metavar="ID", help="Only this correction's entries.", parser=I64)]
InvoiceFilter = Annotated[int | None, typer.Option(
    "--invoice", metavar="ID", parser=I64, help="Only entries of this Procore invoice.")]
# what `audit log` and `audit export` take (operator_filters): the re-entered invoice as well
InvoiceOrReentered = Annotated[int | None, typer.Option(
    "--invoice", metavar="ID", parser=I64,
    help="Only entries of this Procore invoice, and of the corrections that re-entered an"
    " invoice under this id.")]
ProjectFilter = Annotated[int | None, typer.Option(
    "--project", metavar="ID", help="Only entries in this Procore project.", parser=I64)]
ActorFilter = Annotated[str | None, typer.Option(
    "--actor", metavar="LOGIN",
    help="Only this Procore login's entries, in any case; a name without @ matches the part"
    " before it (ana: ana@summit.example).")]
ActionFilter = Annotated[str | None, typer.Option(
    "--action", metavar="ACTION", callback=known_action,
    help="Only entries of this action: start, resume, approve, checkpoint or a step of an"
    " installed workflow (relink workflows show NAME).")]
OutcomeFilter = Annotated[Outcome | None, typer.Option("--outcome",
                                                       help="Only entries with this outcome.")]
SinceFilter = Annotated[str | None, typer.Option(
    "--since", metavar="WHEN", help=f"Only entries from then on ({FILTER_HELP}).")]
UntilFilter = Annotated[str | None, typer.Option(
    "--until", metavar="WHEN",
    help=f"Only entries before then ({FILTER_HELP}); a date alone includes that whole day.")]
OutFile = Annotated[Path | None, typer.Option("--out", metavar="FILE", help=OUT_HELP)]
COUNT = integer(1, 2**63 - 1, "the range 1 to 2^63 - 1")
TABLE_ROWS = 50  # what the table shows without --limit


def operator_filters(service: "AuditService", invoice: int | None, **given: Any) -> "Filters":
    """The audit filters an operator typed, with the corrections that re-entered ``invoice``
    under that id (so ``--invoice`` finds them by either invoice)."""
    from commands.datafile import audit_filters

    filters = audit_filters(invoice=invoice, **given)
    if invoice is None:
        return filters
    produced = service.corrections_recording(REENTERED_AS, invoice)
    return dataclasses.replace(filters, produced_by=produced or None)
