"""Tables people read at any width, and times in the operator's zone.

:func:`table` never wraps or breaks an id, a state, a step or a timestamp: those columns keep
their whole width (a login too long is shortened with an ellipsis, never broken). The free text
of a row (a message, next steps) goes in a last column when the terminal leaves it room, wrapped
at spaces; otherwise on the lines below its row, indented, as wide as the terminal. Piped output
is laid out for 80 columns (rich's default; ``COLUMNS`` sets another).

Times are stored in UTC. On a terminal they are shown in local time, the column header naming
the zone; piped, or with ``--utc``, in UTC (:class:`Times`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.padding import Padding
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from engine.terminal import printable

# the least room the free-text column needs to stay beside its row
NOTE_WIDTH = 32
GAP = 2


class OperatorConsole(Console):
    """A rich console that knows whether the operator asked for UTC (``--utc``)."""

    def __init__(self, *args: Any, utc: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.utc = utc


@dataclass(frozen=True, slots=True)
class Times:
    """How stored UTC timestamps are shown: local time on a terminal, else UTC."""

    local: bool

    @classmethod
    def of(cls, console: Console) -> Times:
        return cls(console.is_terminal and not getattr(console, "utc", False))

    def moment(self, text: object) -> dt.datetime | None:
        try:
            moment = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.astimezone() if self.local else moment.astimezone(dt.UTC)

    def __call__(self, text: object, *, seconds: bool = True) -> str:
        """``2026-12-06 21:01:29`` (``seconds=False``: ``2026-12-06 21:01``); text that is no
        timestamp is shown as it is."""
        moment = self.moment(text)
        if moment is None:
            return printable(text or "—")
        return moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")

    def zone(self, texts: Iterable[object] = ()) -> str:
        """The zone the times are shown in: ``UTC``, or the local zone's name(s), e.g. ``CET``
        or ``CET/CEST`` when the shown times span a change of summer time."""
        if not self.local:
            return "UTC"
        names: dict[str, None] = {}
        for text in texts:
            moment = self.moment(text)
            if moment is not None:
                names.setdefault(moment.tzname() or moment.strftime("%z"))
        if not names:
            names.setdefault(dt.datetime.now().astimezone().tzname() or "local")
        return "/".join(list(names)[:3])

    def header(self, label: str, texts: Iterable[object] = ()) -> str:
        return f"{label} ({self.zone(texts)})"


@dataclass(frozen=True, slots=True)
class Column:
    """A column that is never wrapped: ``limit`` shortens longer values with an ellipsis."""

    header: str
    justify: str = "left"
    limit: int | None = None
    style: str = ""


def table(
    console: Console,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str | Text]],
    notes: Sequence[RenderableType | None] | None = None,
    *,
    note_header: str = "",
    note_label: str = "",
    note_width: int = NOTE_WIDTH,
    title: str | None = None,
    below: bool = False,
) -> None:
    """Print ``rows`` under ``columns``, each row's note (free text) beside it under
    ``note_header`` when at least ``note_width`` columns are left for it, else (or when
    ``below``) on the lines below it, after ``note_label``."""
    fixed = _fixed(columns, rows, title)
    if not notes or all(_empty(note) for note in notes):
        console.print(Trimmed(fixed))
        return
    width = console.measure(fixed).maximum
    if not below and width + GAP + note_width <= console.width:
        wide = _fixed(columns, [], title)
        wide.add_column(note_header, ratio=1, overflow="fold", min_width=note_width)
        for cells, note in zip(rows, notes, strict=True):
            wide.add_row(*_cells(cells), note if note is not None else Text(""))
        console.print(Trimmed(wide))
        return
    if note_label:
        notes = [Text.assemble((f"{note_label}: ", "dim"), note)
                 if isinstance(note, Text) and note.plain else note for note in notes]
    console.print(_Stacked(fixed, len(rows), notes))


def _empty(note: RenderableType | None) -> bool:
    return note is None or (isinstance(note, Text) and not note.plain)


def _fixed(columns: Sequence[Column], rows: Sequence[Sequence[str | Text]],
           title: str | None) -> Table:
    grid = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold", title=title,
                 title_justify="left", title_style="bold")
    for column in columns:
        grid.add_column(column.header, justify=column.justify,  # type: ignore[arg-type]
                        no_wrap=True, overflow="ellipsis", max_width=column.limit,
                        style=column.style or None)
    for cells in rows:
        grid.add_row(*_cells(cells))
    return grid


def _cells(cells: Sequence[str | Text]) -> list[Text]:
    return [cell if isinstance(cell, Text) else Text(printable(cell)) for cell in cells]


class Trimmed:
    """A renderable's lines without the spaces that pad them to the width (piped output and
    copied text carry no trailing blanks)."""

    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        wrapped = options.update(no_wrap=False, overflow="fold")  # the console may soft-wrap
        yield from _lines(console.render_lines(self.renderable, wrapped, pad=False))


class _Stacked:
    """A table of one-line rows, each followed by its note on the lines below, indented to the
    second column."""

    def __init__(self, fixed: Table, count: int, notes: Sequence[RenderableType | None]
                 ) -> None:
        self.fixed, self.count, self.notes = fixed, count, notes

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = console.render_lines(self.fixed, options, pad=False)
        heading = len(lines) - self.count
        yield from _lines(lines[:heading])
        first = self.fixed.columns[0]
        indent = min(console.measure(first_cells(first)).maximum + GAP, options.max_width // 3)
        wrapped = options.update(no_wrap=False, overflow="fold")  # the console may soft-wrap
        for line, note in zip(lines[heading:], self.notes, strict=True):
            yield from _lines([line])
            if note is not None and not _empty(note):
                padded = Padding(note, (0, 0, 0, indent), expand=False)
                yield from _lines(console.render_lines(padded, wrapped, pad=False))


def first_cells(column: Any) -> Text:
    """The widest cell of a column (header included), to indent notes to the next one."""
    cells = [Text(str(column.header)), *(c for c in column.cells if isinstance(c, Text))]
    return max(cells, key=lambda cell: cell.cell_len)


def _lines(lines: Iterable[list[Segment]]) -> Iterator[Segment]:
    """Lines of segments, each without its trailing blanks, then a line break."""
    for line in lines:
        kept = list(line)
        while kept and not kept[-1].control and not kept[-1].text.strip():
            kept.pop()
        if kept and not kept[-1].control:
            last = kept[-1]
            kept[-1] = Segment(last.text.rstrip(), last.style)
        yield from kept
        yield Segment.line()
