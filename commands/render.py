"""Human output with rich: tables and panels of the plain data the use cases return (laid out
by :mod:`commands.layout`: ids, states, steps and times never broken)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from commands.layout import Column, Times, Trimmed, table
from engine.terminal import printable, rich_safe

OUTCOME_STYLES = {"succeeded": "green", "refused": "yellow", "failed": "red", "in_flight": "cyan"}


# the audit trail ---------------------------------------------------------------------------


def _state_after(entry: dict[str, Any]) -> str:
    """The state an entry left its correction in (the one it was in, when it did not move)."""
    return str(entry.get("to_state") or entry.get("from_state") or "—")


def _trail_columns(entries: list[dict[str, Any]], times: Times) -> list[Column]:
    return [
        Column("seq", justify="right"),
        Column(times.header("time", (e["recorded_at"] for e in entries))),
        Column("actor", limit=16),
        Column("action"),
        Column("outcome"),
        Column("state"),
    ]


def _trail_row(entry: dict[str, Any], times: Times) -> list[str | Text]:
    outcome = printable(entry["outcome"])
    return [
        printable(entry["seq"]),
        times(entry["recorded_at"]),
        printable((entry.get("actor_login") or "—").split("@")[0]),
        printable(entry["action"]),
        Text(outcome, style=OUTCOME_STYLES.get(entry["outcome"], "")),
        printable(_state_after(entry)),
    ]


def audit_table(
    console: Console, entries: Iterable[dict[str, Any]], title: str = "", *,
    verbose: bool = False,
) -> None:
    """The audit trail: a row per entry (seq, time, actor, action, outcome, the state after
    it), its message beside it or below; ``verbose`` adds below each entry what it records:
    the actor in full, the transition, reason, permissions read, remote calls and the
    field-by-field difference (:func:`entry_details`)."""
    entries = list(entries)
    times = Times.of(console)
    rows = [_trail_row(entry, times) for entry in entries]
    notes: list[RenderableType | None] = []
    for entry in entries:
        message = _message(entry)
        notes.append(Group(message, entry_details(entry, snapshot="count"))
                     if verbose else message)
    table(console, _trail_columns(entries, times), rows, notes, note_header="message",
          title=rich_safe(title) if title else None, below=verbose)


def _message(entry: dict[str, Any]) -> Text:
    """An entry's message, and a visible marker when a loosened policy governed it."""
    text = Text(printable(entry["message"]))
    evidence = entry.get("evidence")
    loosened = evidence.get("policy_fingerprint") if isinstance(evidence, dict) else None
    if loosened:
        text.append(f"\npolicy: loosened {printable(str(loosened))}", style="bold yellow")
    return text


def entry_details(entry: dict[str, Any], *, snapshot: str = "fields") -> Table:
    """What an entry records beyond its row, as labelled lines: the actor, the transition, the
    reason, the permissions read (and those the step requires), each remote call (method,
    path, status, request id), the field-by-field difference of its before/after snapshots,
    and any other evidence. ``snapshot``: a lone snapshot (``start``) as its ``fields`` one by
    one, or only their ``count``."""
    grid = _labelled()
    _details(entry, lambda label, *values: _add(grid, label, *values), snapshot=snapshot)
    return grid


def _labelled() -> Table:
    """A grid of labelled lines: labels in bold, values wrapped at spaces."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    return grid


def _add(grid: Table, label: str, *values: str | Text) -> None:
    """Lines of ``grid``: the label on the first, each value on its own."""
    for number, value in enumerate(values):
        grid.add_row(label if number == 0 else "",
                     value if isinstance(value, Text) else Text(printable(value)))


def _details(entry: dict[str, Any], add: Callable[..., None], *, snapshot: str) -> None:
    evidence = entry.get("evidence") if isinstance(entry.get("evidence"), dict) else {}
    assert isinstance(evidence, dict)

    actor = entry.get("actor_login")
    if actor or entry.get("actor_name"):
        add("actor", f"{entry.get('actor_name') or '—'} <{actor or '—'}>"
                     f" (Procore user {entry.get('actor_id') or '—'})")
    source, dest = entry.get("from_state"), entry.get("to_state")
    add("state", f"{source or '—'} → {dest}" if source != dest else f"{dest or '—'} (unchanged)")
    add("reason", entry.get("reason") or "—")
    add("permissions", *_permissions(evidence))
    calls = [_call(call) for call in evidence.get("calls") or [] if isinstance(call, dict)]
    add("remote calls", *(calls or ["none"]))
    from engine.reviews import changes  # only here: the audit modules are not light
    from integrations.shape import flatten

    found = changes(entry)
    if found:
        add("changes", *(f"{c['field']}: {_value(c.get('before'))} → {_value(c.get('after'))}"
                         for c in found))
    elif isinstance(evidence.get("before"), dict) and "after" not in evidence:
        fields = flatten(evidence["before"])
        if snapshot == "fields":
            add("snapshot", *(f"{name}: {_value(value)}" for name, value in fields.items()))
        else:
            add("snapshot", f"{len(fields)} fields kept (relink audit show {entry['seq']}"
                            " lists them)")
    elif "after" in evidence:
        add("changes", "none (the same before and after)")
    if isinstance(evidence.get("corrected"), dict):
        add("data file", *(f"{name}: {_value(value)}"
                           for name, value in flatten(evidence["corrected"]).items()))
    rest = {key: value for key, value in evidence.items() if key not in _SHOWN}
    if rest:
        add("evidence", *(f"{key}: {_value(value)}" for key, value in rest.items()))


# evidence keys entry_details shows in lines of their own
_SHOWN = {"calls", "permissions", "required", "before", "after", "changes", "corrected",
          "policy_fingerprint"}


def _permissions(evidence: dict[str, Any]) -> list[str | Text]:
    read = evidence.get("permissions")
    lines: list[str | Text] = []
    if isinstance(read, dict) and read:
        lines.append("read: " + "; ".join(
            f"{name.replace('_', ' ')} {_level(value)}" for name, value in read.items()))
    if isinstance(evidence.get("required"), dict):
        lines.append("required: " + requirement_text(evidence["required"]))
    if evidence.get("policy_fingerprint"):
        lines.append(Text(printable(f"policy: loosened {evidence['policy_fingerprint']}"),
                          style="bold yellow"))
    return lines or ["none read"]


def _level(value: Any) -> str:
    """A permission as read: a level as Procore names it, a privilege as yes or no."""
    return ("yes" if value else "no") if isinstance(value, bool) else _value(value)


def _call(call: dict[str, Any]) -> str:
    text = f"{call.get('method', '?')} {call.get('path', '?')} → {call.get('status', '—')}"
    extra = [str(call["system"])] if call.get("system") else []
    if call.get("request_id"):
        extra.append(f"request {call['request_id']}")
    return text + (f" ({', '.join(extra)})" if extra else "")


def _value(value: Any) -> str:
    """A JSON value as a reader sees it: strings as they are, null as —, the rest as JSON."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)




def entry_view(console: Console, entry: dict[str, Any]) -> None:
    """``relink audit show SEQ``: one entry, every field and all it records."""
    times = Times.of(console)
    grid = _labelled()
    subject = f"{entry.get('subject_type') or ''} {entry.get('subject_id') or ''}".strip()
    rows: list[tuple[str, str | Text]] = [
        ("seq", f"{entry['seq']} (format {entry.get('format') or 1})"),
        ("time", f"{times(entry['recorded_at'])} {times.zone([entry['recorded_at']])}"
                 f" (recorded {entry['recorded_at']})"),
        ("correction", f"{entry.get('workflow_id') or '—'} ({entry.get('workflow')}"
                       f" v{entry.get('workflow_version')})"),
        ("subject", subject or "—"),
        ("project", f"{entry.get('project_id') or '—'}, company {entry.get('company_id') or '—'}"),
    ]
    rows += [(key.replace("_", " "), str(entry[key])) for key in ("invoice_id", "erp_bill_id")
             if entry.get(key) is not None]
    rows += [("action", str(entry["action"])),
             ("outcome", Text(printable(entry["outcome"]),
                              style=OUTCOME_STYLES.get(entry["outcome"], ""))),
             ("message", str(entry["message"]))]
    for label, value in rows:
        _add(grid, label, value)
    _details(entry, lambda label, *values: _add(grid, label, *values), snapshot="fields")
    _add(grid, "hash", str(entry.get("hash")))
    _add(grid, "previous hash", str(entry.get("prev_hash")))
    console.print(Trimmed(grid))


# corrections -------------------------------------------------------------------------------


def _subject(item: dict[str, Any]) -> str:
    """What an instance corrects: ``invoice 9001`` style, from its subject fields."""
    return f"{item.get('subject_type', '')} {item.get('subject_id', '')}".strip()


def _next(item: dict[str, Any]) -> str:
    """What may come next: the steps allowed, or ``resume`` while a step is in flight."""
    flight = item.get("in_flight")
    if flight:
        return f"resume ({flight['step']} in flight)"
    return ", ".join(item.get("next") or [])


def workflow_table(console: Console, items: list[dict[str, Any]]) -> None:
    """``relink list``: a row per correction (id, state, project, subject, last change), what
    may come next beside it or below."""
    if not items:
        console.print("No corrections match.")
        return
    times = Times.of(console)
    invoices = all("invoice_id" in item for item in items)
    subject = [Column("invoice", justify="right"), Column("bill")] if invoices else [
        Column("subject")]
    columns = [Column("id", justify="right"), Column("state"),
               Column("project", justify="right"), *subject,
               Column(times.header("updated", (item["updated_at"] for item in items)))]
    rows: list[list[str | Text]] = []
    for item in items:
        named = ([printable(item["invoice_id"]), printable(item.get("erp_bill_id") or "—")]
                 if invoices else [printable(_subject(item))])
        rows.append([printable(item["id"]), printable(item["state"]),
                     printable(item["project_id"]), *named,
                     times(item["updated_at"], seconds=False)])
    notes: list[RenderableType | None] = [
        Text(printable(_next(item)), style="cyan" if item.get("in_flight") else "")
        for item in items
    ]
    table(console, columns, rows, notes, note_header="next", note_label="next",
          note_width=24)


def show_workflow(console: Console, doc: dict[str, Any]) -> None:
    """``relink show``: the correction's facts, then its history."""
    times = Times.of(console)
    flight = doc.get("in_flight")
    where = f"in project {doc['project_id']}, company {doc['company_id']}"
    lines = [
        ("correction", f"{doc['id']} ({doc['workflow']} v{doc['version']})"),
        ("state", doc["state"]),
    ]
    if "invoice_id" in doc:
        lines += [
            ("invoice", f"{doc['invoice_id']} {where}"),
            ("ERP bill", f"{doc.get('erp_bill_id') or '—'} in {doc['erp']}"),
        ]
    else:
        lines += [(doc.get("subject_type") or "subject", f"{doc.get('subject_id')} {where}"),
                  ("ERP", str(doc["erp"]))]
        lines += [(key.replace("_", " "), str(value)) for key, value in doc.items()
                  if key.startswith("erp_") and value is not None]
    since = (f"{times(flight['since'])} {times.zone([flight['since']])}"
             if flight and flight.get("since") else "")
    lines += [
        ("in flight", f"{flight['step']} since {since}" if flight else "no"),
        ("next", _next(doc) or "none (finished)"),
        ("reason", doc.get("reason") or "—"),
    ]
    if doc.get("new_invoice_id"):
        lines.append(("re-entered as", str(doc["new_invoice_id"])))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in lines:
        grid.add_row(label, Text(printable(value)))
    console.print(Trimmed(grid))
    console.print()
    audit_table(console, doc.get("history", []), title="History")


def requirement_text(needs: dict[str, Any]) -> str:
    """A step's permission requirement in Procore's words, e.g. ``Commitments Admin; ...``."""
    from workflows.definition import PRIVILEGES, TOOLS

    parts = []
    for name, value in needs.items():
        if name in TOOLS and value:
            parts.append(f"{TOOLS[name][1]} {'/'.join(value)}")
        elif name in PRIVILEGES and value is True:
            parts.append(PRIVILEGES[name])
    return "; ".join(parts) or "—"


def identity(console: Console, doc: dict[str, Any]) -> None:
    console.print(rich_safe(f"{doc['name']} <{doc['login']}> (Procore user {doc['id']})"))
    erp = doc.get("erp") or "not configured"
    console.print(rich_safe(f"company {doc['company_id']}, ERP {erp}"))
    for name, value in doc["permissions"].items():
        shown = ("yes" if value else "no") if isinstance(value, bool) else value  # not True
        console.print(rich_safe(f"  {name.replace('_', ' ')}: {shown}"))
    if doc.get("policy_fingerprint"):
        files = ", ".join(doc.get("config_files") or []) or "the config file"
        console.print(Text(printable(
            f"policy: loosened {doc['policy_fingerprint']} (looser than product.md's default,"
            f" from {files}; recorded in every audit entry it governs)"), style="bold yellow"))
    if not doc.get("steps"):
        return
    checks = Table(title="What relink checks", title_justify="left")
    checks.add_column("step", no_wrap=True)
    for column in ("requires", "you"):
        checks.add_column(column, overflow="fold")
    for step in doc["steps"]:
        if step["allowed"] is None:
            verdict = Text("give --project to check", style="dim")
        elif step["allowed"]:
            verdict = Text("allowed", style="green")
        else:
            verdict = Text(printable("not allowed: lacks " + "; ".join(step["missing"])),
                           style="yellow")
        requires = Text(printable(requirement_text(step["requires"])))
        if step.get("loosened"):
            requires.append(printable(f" (loosened: {'; '.join(step['loosened'])})"),
                            style="yellow")
        if step.get("approval"):
            approver = requirement_text(step["approval"]["approver"])
            requires.append(printable(
                f" + a second person's approval ({approver}; valid"
                f" {step['approval']['minutes']:g} min)"), style="cyan")
        checks.add_row(rich_safe(step["step"]), requires, verdict)
    console.print(checks)


def definition(console: Console, doc: dict[str, Any]) -> None:
    """``relink workflows show``: the definition, then each step: where it goes from where,
    what it does and what it requires (states and steps are never broken across lines)."""
    about = Text.assemble((printable(doc["name"]), "bold"),
                          printable(f" v{doc['version']}: {doc['description']}"))
    states, finals = ", ".join(doc["states"]), ", ".join(doc["finals"])
    # wrapped at spaces here, not by the terminal inside a word
    console.print(Trimmed(about))
    console.print(Trimmed(Text(printable(f"states: {states} (final: {finals})"))))
    steps = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1),
                  header_style="bold")
    steps.add_column("step", no_wrap=True)
    steps.add_column("from → to, what it does, what it requires", overflow="fold")
    for step in doc["steps"]:
        route = f"{', '.join(step['from']) or '—'} → {step['to']}"
        steps.add_row(Text(printable(step["name"])), Group(
            Text(printable(route), style="bold"),
            Text(printable(step["summary"])),
            Text(printable(f"requires {requirement_text(step['requires'])}"), style="dim"),
        ))
    console.print(Trimmed(steps))
