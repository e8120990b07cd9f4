"""Validation of the writable requisition fields sent to ``POST /rest/v1.1/requisitions``.

Writable: ``period_id`` (integer), ``requisition_start``, ``requisition_end``, ``billing_date``
(``YYYY-MM-DD``), ``invoice_number`` (non-empty string), ``status`` (Procore's list), ``comment``
(string or null), ``final`` (boolean), ``items`` (list of line items). A line item **(model)** is
``{"description": str, "work_completed_this_period": money, "materials_presently_stored": money}``
(the last one optional, ``"0.00"`` by default), money being a decimal string such as ``"1250.00"``.
Anything else is reported per field, Procore-style: ``{"field": ["problem", ...]}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

STATUSES = (
    "draft",
    "under_review",
    "revise_and_resubmit",
    "approved",
    "approved_as_noted",
    "pending_owner_approval",
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MONEY = re.compile(r"-?\d{1,12}(\.\d{1,2})?")
_ITEM_FIELDS = ("description", "work_completed_this_period", "materials_presently_stored")

Errors = dict[str, list[str]]


def _date(value: Any) -> tuple[Any, str | None]:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        return None, "must be a date in the YYYY-MM-DD format"
    try:
        date.fromisoformat(value)
    except ValueError:
        return None, "is not a valid date"
    return value, None


def _integer(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None, "must be a positive integer"
    return value, None


def text(value: Any) -> tuple[Any, str | None]:
    if not isinstance(value, str) or not value.strip() or len(value) > 255:
        return None, "must be a non-empty string of at most 255 characters"
    return value, None


def optional_text(value: Any) -> tuple[Any, str | None]:
    if value is not None and (not isinstance(value, str) or len(value) > 10_000):
        return None, "must be a string or null"
    return value, None


def _status(value: Any) -> tuple[Any, str | None]:
    if value not in STATUSES:
        return None, f"must be one of {', '.join(STATUSES)}"
    return value, None


def boolean(value: Any) -> tuple[Any, str | None]:
    if not isinstance(value, bool):
        return None, "must be true or false"
    return value, None


def money(value: Any) -> str | None:
    """``value`` normalised to two decimals, or None when it is not a money string."""
    if not isinstance(value, str) or not _MONEY.fullmatch(value):
        return None
    return f"{Decimal(value):.2f}"


_FIELD_CHECKS: dict[str, Callable[[Any], tuple[Any, str | None]]] = {
    "period_id": _integer,
    "requisition_start": _date,
    "requisition_end": _date,
    "billing_date": _date,
    "invoice_number": text,
    "status": _status,
    "comment": optional_text,
    "final": boolean,
}


def validate(fields: dict[str, Any]) -> tuple[dict[str, Any], Errors]:
    """The cleaned fields, and the problems found (empty when valid)."""
    clean: dict[str, Any] = {}
    errors: Errors = {}
    for name, value in fields.items():
        if name == "items":
            clean["items"] = _items(value, errors)
            continue
        check = _FIELD_CHECKS.get(name)
        if check is None:
            errors.setdefault(str(name)[:80], []).append("is not a writable field")
            continue
        cleaned, problem = check(value)
        if problem is None:
            clean[name] = cleaned
        else:
            errors.setdefault(name, []).append(problem)
    start, end = clean.get("requisition_start"), clean.get("requisition_end")
    if start is not None and end is not None and start > end:
        errors.setdefault("requisition_end", []).append("must not be before requisition_start")
    return clean, errors


def _items(value: Any, errors: Errors) -> list[dict[str, str]]:
    if not isinstance(value, list):
        errors.setdefault("items", []).append("must be a list")
        return []
    items = []
    for index, item in enumerate(value):
        prefix = f"items[{index}]"
        if not isinstance(item, dict):
            errors.setdefault(prefix, []).append("must be an object")
            continue
        for name in [name for name in item if name not in _ITEM_FIELDS]:
            errors.setdefault(f"{prefix}.{str(name)[:80]}", []).append("is not a writable field")
        description = item.get("description")
        if not isinstance(description, str) or not description.strip():
            errors.setdefault(f"{prefix}.description", []).append("must be a non-empty string")
        work = money(item.get("work_completed_this_period"))
        if work is None:
            errors.setdefault(f"{prefix}.work_completed_this_period", []).append(
                'must be an amount such as "1250.00"'
            )
        stored = money(item.get("materials_presently_stored", "0.00"))
        if stored is None:
            errors.setdefault(f"{prefix}.materials_presently_stored", []).append(
                'must be an amount such as "1250.00"'
            )
        if isinstance(description, str) and work is not None and stored is not None:
            items.append(
                {
                    "description": description,
                    "work_completed_this_period": work,
                    "materials_presently_stored": stored,
                }
            )
    return items
