"""Human output with rich: tables and panels of the plain data the use cases return."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from engine.terminal import printable, rich_safe

OUTCOME_STYLES = {"succeeded": "green", "refused": "yellow", "failed": "red", "in_flight": "cyan"}


def _transition(entry: dict[str, Any]) -> str:
    before, after = entry.get("from_state"), entry.get("to_state")
    if before == after:
        return before or "—"
    return f"{before or '—'} → {after}"


def audit_table(console: Console, entries: Iterable[dict[str, Any]], title: str = "") -> None:
    table = Table(title=rich_safe(title) if title else None, show_lines=False)
    table.add_column("seq", no_wrap=True, justify="right")
    table.add_column("UTC", min_width=10)
    for column in ("actor", "action", "state"):
        table.add_column(column, overflow="fold")
    table.add_column("outcome", no_wrap=True)
    table.add_column("message", overflow="fold", ratio=1, min_width=16)
    for entry in entries:
        table.add_row(
            rich_safe(entry["seq"]),
            rich_safe(str(entry["recorded_at"])[:19].replace("T", " ")),
            rich_safe((entry.get("actor_login") or "—").split("@")[0]),
            rich_safe(entry["action"]),
            rich_safe(_transition(entry)),
            Text(printable(entry["outcome"]), style=OUTCOME_STYLES.get(entry["outcome"], "")),
            _message(entry),
        )
    console.print(table)


def _message(entry: dict[str, Any]) -> Text:
    """An entry's message, and a visible marker when a loosened policy governed it."""
    text = Text(printable(entry["message"]))
    evidence = entry.get("evidence")
    loosened = evidence.get("policy_fingerprint") if isinstance(evidence, dict) else None
    if loosened:
        text.append(f"\npolicy: loosened {printable(str(loosened))}", style="bold yellow")
    return text


def _subject(item: dict[str, Any]) -> str:
    """What an instance corrects: ``invoice 9001`` style, from its subject fields."""
    return f"{item.get('subject_type', '')} {item.get('subject_id', '')}".strip()


def workflow_table(console: Console, items: list[dict[str, Any]]) -> None:
    if not items:
        console.print("No corrections match.")
        return
    invoices = all("invoice_id" in item for item in items)
    table = Table()
    subject_columns = ("invoice", "erp bill") if invoices else ("subject",)
    for column in (
        "id",
        "state",
        "project",
        *subject_columns,
        "in flight",
        "next",
        "updated (UTC)",
    ):
        table.add_column(column, overflow="fold")
    for item in items:
        flight = item.get("in_flight")
        subject = (
            (item["invoice_id"], item.get("erp_bill_id") or "—") if invoices
            else (_subject(item),)
        )
        table.add_row(
            *map(rich_safe, (
                item["id"],
                item["state"],
                item["project_id"],
                *subject,
                flight["step"] if flight else "",
                ", ".join(item["next"]),
                str(item["updated_at"])[:19].replace("T", " "),
            ))
        )
    console.print(table)


def show_workflow(console: Console, doc: dict[str, Any]) -> None:
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
    lines += [
        ("in flight", f"{flight['step']} since {flight['since']}" if flight else "no"),
        ("next", ", ".join(doc["next"]) or "none (finished)"),
        ("reason", doc.get("reason") or "—"),
    ]
    if doc.get("new_invoice_id"):
        lines.append(("re-entered as", str(doc["new_invoice_id"])))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for label, value in lines:
        grid.add_row(label, rich_safe(value))
    console.print(grid)
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
        console.print(rich_safe(f"  {name.replace('_', ' ')}: {value}"))
    if doc.get("policy_fingerprint"):
        files = ", ".join(doc.get("config_files") or []) or "the config file"
        console.print(Text(printable(
            f"policy: loosened {doc['policy_fingerprint']} (looser than product.md's default,"
            f" from {files}; recorded in every audit entry it governs)"), style="bold yellow"))
    if not doc.get("steps"):
        return
    table = Table(title="What relink checks", title_justify="left")
    for column in ("step", "requires", "you"):
        table.add_column(column, overflow="fold")
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
        table.add_row(rich_safe(step["step"]), requires, verdict)
    console.print(table)


def definition(console: Console, doc: dict[str, Any]) -> None:
    about = rich_safe(f"v{doc['version']}: {doc['description']}")
    console.print(f"[bold]{rich_safe(doc['name'])}[/bold] {about}")
    states, finals = ", ".join(doc["states"]), ", ".join(doc["finals"])
    console.print(rich_safe(f"states: {states} (final: {finals})"))
    table = Table()
    for column in ("step", "from", "to", "requires", "what it does"):
        table.add_column(column, overflow="fold")
    for step in doc["steps"]:
        table.add_row(
            *map(rich_safe, (
                step["name"],
                ", ".join(step["from"]) or "—",
                step["to"],
                requirement_text(step["requires"]),
                step["summary"],
            ))
        )
    console.print(table)
