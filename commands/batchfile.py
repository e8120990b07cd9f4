"""Reading a batch file: CSV with a header row, or JSON (a list of objects, or ``{"rows": [...]}``).

Columns (any case): the subject by ``id`` (``invoice``, ``invoice_id``) or by ``number``
(``invoice_number``), ``project`` (``project_id``), ``reason``, and ``data``: the fields a step
taking data writes (a JSON object; in a CSV cell, its JSON text). An unknown column, a cell that
is not what its column holds, or an unreadable file is exit 2 naming the row; the rows are checked
again, strictly, by the engine (:func:`engine.batch.parse_rows`).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from engine.errors import UsageError

MAX_BATCH_FILE = 10_000_000
MAX_ROWS = 100_000
ALIASES = {
    "id": "id", "invoice": "id", "invoice_id": "id", "subject_id": "id",
    "number": "number", "invoice_number": "number",
    "project": "project", "project_id": "project",
    "reason": "reason", "data": "data",
}
INTEGERS = ("id", "project")


def read_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """The rows of ``path`` with their line (CSV) or position (JSON) numbers."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BATCH_FILE + 1)
        text = raw.decode("utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: cannot read it (not UTF-8 text)") from None
    except (OSError, ValueError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise UsageError(f"{path}: cannot read it ({detail})") from None
    if len(raw) > MAX_BATCH_FILE:
        raise UsageError(f"{path}: larger than {MAX_BATCH_FILE} bytes")
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("[", "{")):
        rows = _json_rows(path, text)
    else:
        rows = _csv_rows(path, text)
    if len(rows) > MAX_ROWS:
        raise UsageError(f"{path}: more than {MAX_ROWS} rows")
    if not rows:
        raise UsageError(f"{path}: no rows")
    return rows


def _json_rows(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    try:
        parsed = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"{path}: not valid JSON ({detail})") from None
    if isinstance(parsed, dict) and set(parsed) == {"rows"}:
        parsed = parsed["rows"]
    if not isinstance(parsed, list):
        raise UsageError(f'{path}: must hold a list of rows (or {{"rows": [...]}})')
    rows = []
    for number, row in enumerate(parsed, 1):
        if not isinstance(row, dict):
            raise UsageError(f"{path}: row {number} is not an object")
        rows.append((number, _columns(path, number, row)))
    return rows


def _csv_rows(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    rows = []
    try:
        for row in reader:
            line = reader.line_num
            if None in row:
                raise UsageError(f"{path}: line {line} has more cells than the header")
            cells = {name: value.strip() if isinstance(value, str) else value
                     for name, value in row.items()}
            if not any(cells.values()):
                continue  # a blank line
            values: dict[str, Any] = {}
            for name, value in cells.items():
                values[name] = None if value in ("", None) else value
            values = _columns(path, line, values)
            for name in INTEGERS:
                if isinstance(values.get(name), str):
                    values[name] = _integer(path, line, name, values[name])
            if isinstance(values.get("data"), str):
                values["data"] = _data(path, line, values["data"])
            rows.append((line, values))
    except csv.Error as exc:
        raise UsageError(f"{path}: not valid CSV (line {reader.line_num}: {exc})") from None
    return rows


def _columns(path: Path, line: int, row: dict[str, Any]) -> dict[str, Any]:
    named: dict[str, Any] = {}
    for name, value in row.items():
        key = ALIASES.get(str(name).strip().lower())
        if key is None:
            known = ", ".join(sorted(set(ALIASES)))
            raise UsageError(f"{path}: row {line}: unknown column {str(name)[:40]!r}"
                             f" (columns: {known})")
        if key in named and named[key] is not None and value is not None:
            raise UsageError(f"{path}: row {line}: {key} given twice")
        if value is not None or key not in named:
            named[key] = value
    return {key: value for key, value in named.items() if value is not None}


def _integer(path: Path, line: int, name: str, text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 16:
        raise UsageError(f"{path}: row {line}: {name} {text[:40]!r} is not an id")
    return int(text)


def _data(path: Path, line: int, text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise UsageError(f"{path}: row {line}: data is not a JSON object") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number relink accepts")
