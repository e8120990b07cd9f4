"""Finding subjects in Procore for operators who know numbers, not ids: the workflow's search
(its ``Subject.find``), each match marked with the correction open on it, and a number resolved
to one subject (none or several: refused, audited, the matches listed)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import sqlalchemy as sa

from engine import entries
from engine.errors import CredentialsRejected, Refused, Unavailable, UsageError
from engine.tables import WORKFLOW
from integrations.errors import (
    RemoteError,
    RemoteNotFound,
    RemoteRefused,
    RemoteRejectedCredentials,
)
from workflows.definition import Found, OpeningContext
from workflows.errors import Rejected

if TYPE_CHECKING:
    from engine.service import CorrectionService


@contextlib.contextmanager
def remote_reads() -> Iterator[None]:
    """What Procore says to a read that changes nothing, as engine errors (nothing to audit)."""
    try:
        yield
    except Rejected as exc:
        raise Refused(exc.message) from exc
    except RemoteRejectedCredentials as exc:
        raise CredentialsRejected(f"Refused: {exc.message}.") from exc
    except (RemoteRefused, RemoteNotFound) as exc:
        raise Refused(f"Refused by Procore: {exc.message}") from exc
    except RemoteError as exc:
        raise Unavailable(f"Failed: {exc.message}. Nothing changed; safe to run again.") from exc


def context(service: CorrectionService, project_id: int, subject_id: str = "") -> Any:
    remotes = service.remotes
    return OpeningContext(
        procore=remotes.procore, erp=remotes.erp_connector,
        company_id=remotes.procore.company_id, project_id=project_id, subject_id=subject_id,
    )


def search(
    service: CorrectionService, project_id: int, filters: Mapping[str, Any]
) -> list[Found]:
    """The subjects of ``project_id`` matching ``filters`` (names of the definition's
    ``Subject.filters``), as Procore lists them."""
    subject = service.definition.subject
    if subject.find is None:
        raise UsageError(f"workflow {service.definition.name} has no search of its subjects")
    unknown = set(filters) - set(subject.filters)
    if unknown:
        raise UsageError(f"unknown filter(s) {', '.join(sorted(unknown))}"
                         f" (filters: {', '.join(subject.filters)})")
    with remote_reads():
        return subject.find(context(service, project_id), filters)


def find(
    service: CorrectionService, project_id: int, filters: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """What a search lists: each match with ``id``, ``project_id``, ``number``, ``linked``, its
    fields and ``correction``, the id of the correction open on it (None when there is none)."""
    found = search(service, project_id, filters)
    open_ones = open_corrections(service, [item.id for item in found])
    return [
        {"id": item.id, "project_id": item.project_id, "number": item.number,
         "linked": item.linked, **item.fields, "correction": open_ones.get(item.id)}
        for item in found
    ]


def open_corrections(service: CorrectionService, subject_ids: list[str]) -> dict[str, int]:
    """Subject id -> the open correction on it, for the workflow's subject type."""
    if not subject_ids:
        return {}
    definition = service.definition
    statement = sa.select(WORKFLOW.c.open_subject_id, WORKFLOW.c.id).where(
        WORKFLOW.c.subject_type == definition.subject.type,
        WORKFLOW.c.open_subject_id.in_(subject_ids),
    )
    with service.db.read() as conn:
        return {str(subject): int(wid) for subject, wid in conn.execute(statement)}


def describe(found: Found) -> str:
    """One match for a refusal: its id and what tells it apart (``9205 (INV-3005, ...)``)."""
    return f"{found.id} ({found.summary})" if found.summary else found.id


def resolve(service: CorrectionService, number: str, project_id: int, reason: str | None) -> str:
    """The one subject numbered ``number`` in ``project_id``; none or several is a refusal,
    audited (``start``, refused, no subject id), naming the matches."""
    service.permissions.actor()  # who is asking: read before anything is decided
    matches = search(service, project_id, {"number": number})
    if len(matches) == 1:
        return matches[0].id
    refuse_number(service, number, project_id, matches, reason)


def number_refusal(service: CorrectionService, number: str, project_id: int,
                   matches: list[Found]) -> str:
    noun = service.definition.subject.noun
    if not matches:
        return f"Refused: no {noun} numbered {number!r} in project {project_id}."
    listed = "; ".join(describe(found) for found in matches)
    return (f"Refused: {noun} number {number!r} matches {len(matches)} {noun}s in project"
            f" {project_id}: {listed}. Give the {noun} id instead.")


def refuse_number(service: CorrectionService, number: str, project_id: int,
                  matches: list[Found], reason: str | None) -> NoReturn:
    message = number_refusal(service, number, project_id, matches)
    with service.db.write() as conn:
        number_entry(service, conn, number, project_id, matches, reason, message)
    raise Refused(message, step="start")


def number_entry(service: CorrectionService, conn: Any, number: str, project_id: int,
                 matches: list[Found], reason: str | None, message: str,
                 **evidence: Any) -> None:
    """The audited refusal of a number that names no single subject."""
    entries.append(
        service, conn, action="start", outcome="refused", message=message,
        subject_type=service.definition.subject.type, subject_id=None, project_id=project_id,
        reason=reason,
        evidence={"number": number, "matches": [found.id for found in matches], **evidence},
    )
