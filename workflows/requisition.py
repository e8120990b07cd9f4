"""The corrected-requisition data file: validation, and merging with the original's snapshot."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from workflows.definition import Previewed

WRITABLE = (
    "period_id",
    "requisition_start",
    "requisition_end",
    "billing_date",
    "invoice_number",
    "status",
    "comment",
    "final",
    "items",
)
STATUSES = (
    "draft",
    "under_review",
    "revise_and_resubmit",
    "approved",
    "approved_as_noted",
    "pending_owner_approval",
)
# An item of the data file names the line it corrects (the line item it bills, as the invoice's
# extended view shows it) and the amounts it changes. Procore's items have no description: they
# are named by ``item_type`` and the line item they bill (``line_item_id``, or
# ``detail_line_item_id`` for a contract detail item; RequisitionSubcontractorInvoiceItemsInner).
LINE_KEYS = ("line_item_id", "detail_line_item_id")
AMOUNTS = ("work_completed_this_period", "materials_presently_stored")
ITEM_FIELDS = (*LINE_KEYS, *AMOUNTS, "comment")
ITEM_TYPES = ("contract_item", "contract_detail_item", "change_order_item")
# Money as Procore takes it: no exponent, NaN or Infinity (which Decimal and float accept)
MONEY = re.compile(r"-?[0-9]{1,12}(\.[0-9]{1,2})?")
FROM_ORIGINAL = ("project_id", "commitment_id")
DATES = ("requisition_start", "requisition_end", "billing_date")
SCALAR = (str, int, bool, type(None))


class InvalidData(ValueError):
    """The data file holds something Procore would not accept; the message names the field."""


def validate_correction(data: Any) -> dict[str, Any]:
    """Check a parsed data file; return it unchanged or raise InvalidData naming the problem."""
    if not isinstance(data, dict):
        raise InvalidData("the data file must hold a table/object of requisition fields")
    if not data:
        raise InvalidData("the data file corrects no field")
    for key, value in data.items():
        if key in FROM_ORIGINAL:
            raise InvalidData(f"{key} cannot be changed: it always comes from the original invoice")
        if key not in WRITABLE:
            raise InvalidData(f"unknown field {key!r} (writable: {', '.join(WRITABLE)})")
        _check_field(key, value)
    return data


def _check_field(key: str, value: Any) -> None:
    if key == "period_id":
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**53:
            raise InvalidData("period_id must be a positive integer below 2^53")
    elif key in DATES:
        if value is not None and not _is_date(value):
            raise InvalidData(f"{key} must be a date YYYY-MM-DD")
    elif key == "invoice_number":
        if not isinstance(value, str) or not value.strip() or len(value) > 255:
            raise InvalidData("invoice_number must be a non-empty string (at most 255 characters)")
    elif key == "status":
        if value not in STATUSES:
            raise InvalidData(f"status must be one of {', '.join(STATUSES)}")
    elif key == "comment":
        if value is not None and not isinstance(value, str):
            raise InvalidData("comment must be a string")
    elif key == "final":
        if not isinstance(value, bool):
            raise InvalidData("final must be true or false")
    elif key == "items":
        _check_items(value)


def _check_items(items: Any) -> None:
    if not isinstance(items, list):
        raise InvalidData("items must be a list of line items")
    seen: set[int] = set()
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidData(f"items[{index}] must be a table/object")
        keys = [key for key in LINE_KEYS if key in item]
        line = item.get(keys[0]) if len(keys) == 1 else None
        if isinstance(line, bool) or not isinstance(line, int) or not 0 < line < 2**63:
            raise InvalidData(
                f"items[{index}] must name the line it corrects: line_item_id (or"
                " detail_line_item_id for a contract detail item), a positive integer"
            )
        if line in seen:
            raise InvalidData(f"items[{index}]: line item {line} is corrected twice")
        seen.add(line)
        for name, value in item.items():
            if name not in ITEM_FIELDS:
                raise InvalidData(
                    f"items[{index}]: unknown field {name!r} (fields: {', '.join(ITEM_FIELDS)})"
                )
            if isinstance(value, float):
                raise InvalidData(
                    f'items[{index}].{name}: write amounts as strings, e.g. "1250.00"'
                )
            if name in AMOUNTS and not (isinstance(value, str) and MONEY.fullmatch(value)):
                raise InvalidData(
                    f"items[{index}].{name}: an amount is a finite decimal string with at most"
                    ' two places and 12 digits before the point, e.g. "1250.00"'
                )
            if not isinstance(value, SCALAR):
                raise InvalidData(f"items[{index}].{name} must be a string, number or boolean")


def _is_date(value: Any) -> bool:
    if isinstance(value, dt.date):
        return True
    if not isinstance(value, str) or len(value) != 10:
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def normalise(data: dict[str, Any]) -> dict[str, Any]:
    """TOML gives dates as date objects; Procore wants YYYY-MM-DD strings."""
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in data.items()}


class NotReenterable(ValueError):
    """The snapshot and the data file do not make a requisition Procore would take."""


def corrected_requisition(snapshot: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """The requisition body to create: every writable field from the snapshot, then the data;
    items are the snapshot's (typed, naming the line they bill), each with the amounts the data
    file gives for its line. NotReenterable when the snapshot's items are not typed (taken
    before relink read invoices with ``view=extended``) or the data names a line not on it."""
    body = {key: snapshot[key] for key in WRITABLE if key in snapshot and key != "items"}
    data = normalise(data)
    body.update({key: value for key, value in data.items() if key != "items"})
    items = [_write_item(item) for item in snapshot.get("items") or []]
    corrections = {_line_of(item): item for item in data.get("items") or []}
    for item in items:
        fix = corrections.pop(_line_of(item), None)
        if fix is not None:
            item.update({key: value for key, value in fix.items() if key not in LINE_KEYS})
    if corrections:
        lines = ", ".join(str(line) for line in corrections)
        raise NotReenterable(f"the data file corrects line items not on this invoice: {lines}")
    if items:
        body["items"] = items
    return body


def _line_of(item: dict[str, Any]) -> int:
    return int(next(item[key] for key in LINE_KEYS if item.get(key) is not None))


def _write_item(item: Any) -> dict[str, Any]:
    """A snapshot item (Procore's extended view) as the create call takes it."""
    if not isinstance(item, dict) or item.get("item_type") not in ITEM_TYPES or not any(
        isinstance(item.get(key), int) for key in LINE_KEYS
    ):
        raise NotReenterable(
            "this correction's snapshot was taken without its items' types and line items"
            " (before relink read invoices with view=extended), so its items cannot be"
            " re-entered faithfully: re-enter this invoice in Procore by hand"
        )
    key = "detail_line_item_id" if item["item_type"] == "contract_detail_item" else "line_item_id"
    written = {"item_type": item["item_type"], key: item.get(key) or item.get("line_item_id")}
    written |= {name: item[name] for name in AMOUNTS if item.get(name) is not None}
    if item.get("comment") is not None:
        written["comment"] = item["comment"]
    return written


def matches(fields: dict[str, Any], body: dict[str, Any]) -> bool:
    """Whether an existing requisition carries exactly the values we would create."""
    return all(fields.get(key) == value for key, value in body.items() if key != "items")


def preview_reentry(snapshot: dict[str, Any], data: dict[str, Any]) -> Previewed:
    """The invoice as it would be re-entered unchanged, and as the data file corrects it; a
    warning when its total changes sign."""
    before, after = corrected_requisition(snapshot, {}), corrected_requisition(snapshot, data)
    old, new = _total(before), _total(after)
    warnings: tuple[str, ...] = ()
    if (old < 0) != (new < 0) and old != 0 and new != 0:
        warnings = (f"the invoice total changes sign: {old} before, {new} after",)
    return Previewed(before, after, warnings)


def _total(body: dict[str, Any]) -> Decimal:
    return sum(
        (Decimal(str(item.get(name) or "0")) for item in body.get("items") or []
         for name in AMOUNTS),
        Decimal("0"),
    )
