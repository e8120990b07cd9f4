"""How a batch shows its progress while it runs, and its summary at the end.

- On a terminal: a rich progress bar with the corrections settled, counts per outcome, steps per
  second, the time left and the remote's rate budget (Procore's ``X-Rate-Limit-Remaining``).
- Not a terminal: one plain line per event (a step attempted, a correction settled).
- ``--jsonl``: each event as one JSON line as it happens, then the summary as the last line.
- ``--json``: nothing while it runs; one JSON document at the end.

Events come from the batch's threads: every output is serialised by one lock.
"""

from __future__ import annotations

import json
import sys
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any

from commands.app import Root, console, emit_json

if TYPE_CHECKING:
    from rich.progress import Progress

SYMBOLS = (("done", "✔", "green"), ("stopped", "✖", "yellow"), ("failed", "!", "red"))


class BatchProgress:
    """A context manager; call it with each event of the run."""

    def __init__(self, options: Root, *, title: str, total: int, jsonl: bool = False) -> None:
        self.options = options
        self.title = title
        self.total = total
        self.jsonl = jsonl
        self.lock = threading.Lock()
        self.out = console(options)
        self.live = not options.json and not jsonl and self.out.is_terminal
        self.bar: Progress | None = None
        self.task: Any = None

    def __enter__(self) -> BatchProgress:
        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[counts]}"), TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                TextColumn("{task.fields[budget]}"),
                console=self.out, transient=False, refresh_per_second=8,
            )
            self.bar.start()
            self.task = self.bar.add_task(self.title, total=self.total or None,
                                          counts=_counts({}), rate="", budget="")
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __call__(self, event: dict[str, Any]) -> None:
        with self.lock:
            if event["event"] == "waiting" and not self.jsonl:
                self._waiting(str(event["message"]), float(event.get("limit") or 0))
            elif self.jsonl:
                shown = {key: value for key, value in event.items() if key != "progress"}
                _line(shown)
            elif self.bar is not None:
                self._update(event.get("progress") or {})
            elif not self.options.json:
                _plain(event)

    def _waiting(self, what: str, limit: float) -> None:
        """Something outside relink is awaited (the operator's Unlink click): say where, above
        the bar on a terminal, on stderr otherwise (stdout stays the run's record)."""
        from engine.terminal import printable, rich_safe

        text = f"Waiting up to {limit / 60:g} min for you: {what}."
        if self.bar is not None:
            self.bar.console.print(rich_safe(text), style="cyan")
        else:
            print(printable(text), file=sys.stderr, flush=True)

    def _update(self, progress: dict[str, Any]) -> None:
        assert self.bar is not None
        rate = progress.get("steps_per_second")
        self.bar.update(
            self.task, completed=progress.get("settled", 0),
            counts=_counts(progress.get("statuses") or {}),
            rate=f"{rate:.1f} steps/s" if rate else "",
            budget=_budget(progress.get("rate_budget") or {}),
        )

    def summary(self, doc: dict[str, Any]) -> None:
        """The end: the JSON document, the JSONL summary line, or the per-correction table."""
        if self.jsonl:
            _line({"event": "summary", **doc})
        elif self.options.json:
            emit_json(doc)
        else:
            batch_table(self.out, doc)


def _line(document: dict[str, Any]) -> None:
    from engine.terminal import terminal_safe_json

    text = json.dumps(document, ensure_ascii=False, default=str)
    sys.stdout.write(terminal_safe_json(text) + "\n")
    sys.stdout.flush()


def _plain(event: dict[str, Any]) -> None:
    from engine.terminal import printable

    subject = event.get("subject_id") or "—"
    label = f" ({event['label']})" if event.get("label") else ""
    where = f"#{event.get('position')} {subject}{label}"
    if event["event"] == "step":
        state = f" → {event['state']}" if event.get("state") else ""
        action = event.get("action") or "step"
        text = f"{where}: {action} {event.get('outcome')}{state}"
        if event.get("outcome") != "succeeded":
            text = f"{where}: {action}: {event.get('message')}"
    else:
        correction = f" correction {event['correction']}" if event.get("correction") else ""
        text = f"{where}:{correction} {event.get('status')} ({event.get('state') or '—'})"
    print(printable(text), flush=True)


def _counts(statuses: dict[str, int]) -> str:
    return " ".join(f"[{style}]{symbol} {statuses.get(name, 0)}[/]"
                    for name, symbol, style in SYMBOLS)


def _budget(headers: dict[str, str]) -> str:
    lowered = {name.lower(): value for name, value in headers.items()}
    left, size = lowered.get("x-rate-limit-remaining"), lowered.get("x-rate-limit-limit")
    if left is None:
        return ""
    return f"Procore budget {left}/{size}" if size else f"Procore budget {left}"


def batch_table(out: Any, doc: dict[str, Any]) -> None:
    """Per correction: position, subject, number, correction, state, status, and the last
    message beside or below; then the counts and what to run next."""
    from rich.text import Text

    from commands.layout import Column, table
    from engine.terminal import printable, rich_safe

    batch = doc["batch"]
    kind = "Plan" if batch["kind"] == "plan" else "Batch"
    columns = [Column("#", justify="right"), Column("subject", justify="right"),
               Column("number", limit=24), Column("role") if batch["kind"] == "plan" else None,
               Column("correction", justify="right"), Column("state"), Column("status")]
    shown = [column for column in columns if column is not None]
    styles = {"done": "green", "stopped": "yellow", "failed": "red"}
    rows = []
    for item in doc["items"]:
        cells: list[Any] = [printable(item["position"]), printable(item["subject_id"] or "—"),
                            printable(item["label"] or "—")]
        if batch["kind"] == "plan":
            cells.append(printable(item["role"] or "—"))
        cells += [printable(item["correction"] or "—"), printable(item["state"] or "—"),
                  Text(printable(item["status"]), style=styles.get(item["status"], ""))]
        rows.append(cells)
    notes = [Text(printable(item["message"] or "")) for item in doc["items"]]
    table(out, shown, rows, notes, note_header="message", note_label="message",
          title=f"{kind} {batch['id']} ({batch['status']})")
    counts = ", ".join(f"{count} {status}" for status, count in sorted(doc["counts"].items()))
    out.print(rich_safe(f"{kind} {batch['id']}: {counts or 'no items'}."))
    if doc.get("message"):
        out.print(rich_safe(str(doc["message"])))
