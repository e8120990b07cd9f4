"""How an audit report reads the log: entries grouped into corrections and their attempts, the
path each correction took through its workflow, and field-by-field differences of snapshots.

Pure functions of entries in their wire form (:mod:`audit.chain`); nothing here reads a
database or knows a workflow by name.

- An **attempt** is one command's work on a correction: a durable step's ``in_flight`` entry
  and the entries that settle it (they share the evidence's ``idempotency_key``), or a single
  entry (a refusal, a step that changes nothing remote, an approval).
- A **correction** is every matching entry of one ``workflow_id``; entries without one (a
  refused ``start``, a checkpoint) are kept apart, as attempts of their own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

START = "start"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One command's entries, in seq order."""

    entries: tuple[dict[str, Any], ...]

    @property
    def action(self) -> str:
        return str(self.entries[0]["action"])

    @property
    def outcome(self) -> str:
        """The outcome of its last entry (``in_flight`` while nothing settled it)."""
        return str(self.entries[-1]["outcome"])


@dataclass(frozen=True, slots=True)
class Correction:
    """The matching entries of one workflow instance, and its attempts."""

    workflow_id: int
    entries: tuple[dict[str, Any], ...]
    attempts: tuple[Attempt, ...]

    @property
    def first(self) -> dict[str, Any]:
        return self.entries[0]

    @property
    def state(self) -> str | None:
        """The state its last entry left it in."""
        return next((e["to_state"] for e in reversed(self.entries) if e.get("to_state")), None)

    def outcomes(self) -> dict[str, int]:
        """How many attempts ended in each outcome."""
        counted: dict[str, int] = {}
        for attempt in self.attempts:
            counted[attempt.outcome] = counted.get(attempt.outcome, 0) + 1
        return counted

    def actors(self) -> list[str]:
        """The logins that acted on it, in order of first appearance."""
        seen: dict[str, None] = {}
        for entry in self.entries:
            if entry.get("actor_login"):
                seen.setdefault(str(entry["actor_login"]))
        return list(seen)


def group(entries: Iterable[dict[str, Any]]) -> tuple[list[Correction], list[Attempt]]:
    """The corrections the entries belong to (by first seq) and the attempts outside any."""
    by_id: dict[int, list[dict[str, Any]]] = {}
    loose: list[dict[str, Any]] = []
    for entry in sorted(entries, key=lambda e: e["seq"]):
        workflow_id = entry.get("workflow_id")
        if workflow_id is None:
            loose.append(entry)
        else:
            by_id.setdefault(workflow_id, []).append(entry)
    corrections = [
        Correction(workflow_id, tuple(found), tuple(attempts(found)))
        for workflow_id, found in by_id.items()
    ]
    return corrections, attempts(loose)


def attempts(entries: Sequence[dict[str, Any]]) -> list[Attempt]:
    """Entries (in seq order) grouped into attempts by their evidence's idempotency key."""
    grouped: list[list[dict[str, Any]]] = []
    open_keys: dict[str, int] = {}
    for entry in entries:
        key = _evidence(entry).get("idempotency_key")
        if isinstance(key, str) and key and key in open_keys:
            grouped[open_keys[key]].append(entry)
            continue
        if isinstance(key, str) and key:
            open_keys[key] = len(grouped)
        grouped.append([entry])
    return [Attempt(tuple(found)) for found in grouped]


# the path taken ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Path:
    """What a correction did in its workflow: the transitions taken (``(from, step, to)``,
    ``start`` from None), the steps tried from a state and not taken (refused, failed or
    still in flight: ``(from, step)``), and the state it is in."""

    taken: tuple[tuple[str | None, str, str], ...]
    tried: tuple[tuple[str, str, str], ...]  # (from, step, outcome)
    current: str | None

    @property
    def visited(self) -> frozenset[str]:
        return frozenset(to for _, _, to in self.taken)


def path(attempts: Sequence[Attempt]) -> Path:
    """The path one correction's attempts (in seq order) record: a transition for each
    succeeded entry that moved (or started), a try for each attempt that did not end well."""
    taken: list[tuple[str | None, str, str]] = []
    tried: list[tuple[str, str, str]] = []
    current: str | None = None
    for attempt in attempts:
        for entry in attempt.entries:
            source, dest = entry.get("from_state"), entry.get("to_state")
            moved = dest and (source != dest or entry["action"] == START)
            if entry["outcome"] == "succeeded" and moved:
                step = (source, str(entry["action"]), str(dest))
                if step not in taken:
                    taken.append(step)
            current = str(dest) if dest else current
        source = attempt.entries[0].get("from_state")
        if attempt.outcome != "succeeded" and source:
            tried_step = (str(source), attempt.action, attempt.outcome)
            if tried_step not in tried:
                tried.append(tried_step)
    return Path(tuple(taken), tuple(tried), current)


# snapshots -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Difference:
    """One field of two snapshots: ``kind`` is ``changed``, ``added``, ``removed`` or
    ``same``; a value absent on one side is :data:`ABSENT`."""

    field: str
    before: Any
    after: Any
    kind: str


ABSENT: Any = type("Absent", (), {"__repr__": lambda self: "ABSENT"})()


def differences(before: Any, after: Any) -> list[Difference]:
    """Field-by-field difference of two snapshots, nested fields named by their path
    (``items[0].description``), in the order of ``before`` then fields only ``after`` has."""
    from integrations.shape import flatten  # not on the start-up path of `audit` commands

    old, new = flatten(before), flatten(after)
    fields = list(old) + [name for name in new if name not in old]
    found = []
    for name in fields:
        a, b = old.get(name, ABSENT), new.get(name, ABSENT)
        if a is ABSENT:
            kind = "added"
        elif b is ABSENT:
            kind = "removed"
        else:
            kind = "same" if _same(a, b) else "changed"
        found.append(Difference(name, a, b, kind))
    return found


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``1`` and ``true`` differ, as do ``1`` and ``1.0`` in their text."""
    return type(a) is type(b) and a == b


def scalar_text(value: Any) -> str:
    """A JSON value as a reader sees it: strings as they are, the rest as JSON."""
    if value is ABSENT:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _evidence(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    evidence = entry.get("evidence")
    return evidence if isinstance(evidence, Mapping) else {}
