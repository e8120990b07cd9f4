"""Parsing what operators type or hand in: data files, durations, audit filters."""

from __future__ import annotations

import datetime as dt
import json
import re
import tomllib
from pathlib import Path
from typing import Any

from audit.chain import OUTCOMES
from audit.log import Filters
from engine.errors import UsageError

MAX_DATA_FILE = 1_000_000


def read_data_file(path: Path) -> dict[str, Any]:
    """A JSON or TOML file of corrected requisition fields (chosen by suffix; else sniffed)."""
    try:
        if path.stat().st_size > MAX_DATA_FILE:
            raise UsageError(f"{path}: larger than {MAX_DATA_FILE} bytes")
        text = path.read_text(encoding="utf-8")
    except UsageError:
        raise
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read it ({exc})") from None
    suffix = path.suffix.lower()
    parsed: Any
    try:
        if suffix == ".toml" or (suffix != ".json" and not text.lstrip().startswith(("{", "["))):
            parsed = tomllib.loads(text)
        else:
            parsed = json.loads(text, parse_constant=_no_constant)
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        kind = "TOML" if suffix == ".toml" else "JSON"
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"{path}: not valid {kind} ({detail})") from None
    if not isinstance(parsed, dict):
        raise UsageError(f"{path}: must hold an object/table of requisition fields")
    return parsed


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> dt.timedelta:
    """``90s``, ``30m``, ``4h``, ``2d``, ``1w``."""
    match = _DURATION.match(text)
    if match is None:
        raise UsageError(f"invalid duration {text!r}: use e.g. 30m, 4h, 2d")
    return dt.timedelta(**{_UNITS[match[2]]: int(match[1])})


def parse_instant(text: str, *, end_of_day: bool = False) -> str:
    """An ISO 8601 date or date-time (UTC when no offset) as the log's timestamp format."""
    try:
        if len(text.strip()) == 10:
            day = dt.date.fromisoformat(text.strip())
            moment = dt.datetime.combine(day, dt.time(), dt.UTC)
            if end_of_day:
                moment += dt.timedelta(days=1)
        else:
            moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
    except ValueError:
        raise UsageError(
            f"invalid date/time {text!r}: use ISO 8601, e.g. 2026-11-27 or 2026-11-27T18:04:05Z"
        ) from None
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
