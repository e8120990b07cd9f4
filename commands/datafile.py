"""Parsing what operators type or hand in: data files, durations, audit filters."""

from __future__ import annotations

import datetime as dt
import json
import re
import tomllib
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.reviews import OUTCOMES, Filters

MAX_DATA_FILE = 1_000_000
MAX_DATA_DEPTH = 16  # a data file is a table of fields, items a list of tables: depth 3


def read_data_file(path: Path) -> dict[str, Any]:
    """A JSON or TOML file of corrected fields (chosen by suffix; else sniffed).

    At most :data:`MAX_DATA_FILE` bytes are read, whatever the file is (a FIFO or a device has
    no size to check beforehand), and nesting deeper than :data:`MAX_DATA_DEPTH` is refused."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_DATA_FILE + 1)
        if len(raw) > MAX_DATA_FILE:
            raise UsageError(f"{path}: larger than {MAX_DATA_FILE} bytes")
        text = raw.decode("utf-8")
    except UsageError:
        raise
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: cannot read it (not UTF-8 text)") from None
    except (OSError, ValueError) as exc:  # ValueError: e.g. a NUL byte in the path
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise UsageError(f"{path}: cannot read it ({detail})") from None
    suffix = path.suffix.lower()
    parsed: Any
    kind = "TOML" if suffix == ".toml" else "JSON"
    try:
        if suffix == ".toml" or (suffix != ".json" and not text.lstrip().startswith(("{", "["))):
            kind = "TOML"
            parsed = tomllib.loads(text)
        else:
            parsed = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise UsageError(f"{path}: nested more than {MAX_DATA_DEPTH} levels deep") from None
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"{path}: not valid {kind} ({detail})") from None
    problem = _problem(parsed)
    if problem:
        raise UsageError(f"{path}: {problem}")
    if not isinstance(parsed, dict):
        raise UsageError(f"{path}: must hold an object/table of fields")
    return parsed


def _problem(value: Any) -> str | None:
    """What no request or audit entry could carry: nesting deeper than MAX_DATA_DEPTH, or text
    that is not Unicode (JSON's ``"\\ud800"`` escape gives a lone surrogate). Iterative: no
    recursion to exhaust."""
    pending = [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict | list):
            if level > MAX_DATA_DEPTH:
                return f"nested more than {MAX_DATA_DEPTH} levels deep"
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, level + 1) for child in children)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "holds text that is not Unicode (a lone surrogate escape such as \\ud800)"
    return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


MAX_DURATION = dt.timedelta(days=100 * 365)


def parse_duration(text: str) -> dt.timedelta:
    """``90s``, ``30m``, ``4h``, ``2d``, ``1w``; at most :data:`MAX_DURATION` (100 years)."""
    match = _DURATION.match(text)
    if match is None:
        raise UsageError(f"invalid duration {text!r}: use e.g. 30m, 4h, 2d")
    unit = int(dt.timedelta(**{_UNITS[match[2]]: 1}).total_seconds())
    seconds = int(match[1]) * unit if len(match[1]) <= 18 else None
    if seconds is None or seconds > MAX_DURATION.total_seconds():
        raise UsageError("that duration is too long: at most 100 years (36500d)")
    return dt.timedelta(seconds=seconds)


EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)
LATEST = dt.datetime.max.replace(tzinfo=dt.UTC)


def parse_instant(text: str, *, end_of_day: bool = False) -> str:
    """An ISO 8601 date or date-time (UTC when no offset) as the log's timestamp format.

    An instant beyond the calendar's ends (``0001-01-01T00:00:00+01:00``; the day after
    ``9999-12-31``) is clamped to its end: as a bound it still includes or excludes everything."""
    try:
        if len(text.strip()) == 10:
            day = dt.date.fromisoformat(text.strip())
            moment = dt.datetime.combine(day, dt.time(), dt.UTC)
            if end_of_day:
                moment = moment + dt.timedelta(days=1) if day < dt.date.max else LATEST
        else:
            moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
        try:
            moment = moment.astimezone(dt.UTC)
        except OverflowError:
            moment = EARLIEST if moment.year == dt.MINYEAR else LATEST
    except ValueError:
        raise UsageError(
            f"invalid date/time {text!r}: use ISO 8601, e.g. 2026-11-27 or 2026-11-27T18:04:05Z"
        ) from None
    # isoformat, not strftime: strftime("%Y") drops the leading zeros of years before 1000
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def audit_filters(
    *,
    workflow: int | None = None,
    invoice: int | None = None,
    project: int | None = None,
    actor: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> Filters:
    if outcome is not None and outcome not in OUTCOMES:
        raise UsageError(f"invalid outcome {outcome!r}: use {', '.join(OUTCOMES)}")
    return Filters(
        workflow_id=workflow,
        invoice_id=invoice,
        project_id=project,
        actor_login=actor,
        action=action,
        outcome=outcome,
        since=parse_instant(since) if since else None,
        until=parse_instant(until, end_of_day=True) if until else None,
    )
