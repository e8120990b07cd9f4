"""Verifying the chain: every seq present, every link and every hash right.

Checks run entry by entry in seq order and stop at the first bad entry, so the seq reported is
the first one that is wrong: a missing seq (an entry deleted), a ``prev_hash`` that is not the
hash of the entry before it (entries removed, reordered or rewritten), or content that does not
hash to the stored ``hash`` (an entry altered).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from rfc8785 import CanonicalizationError

from audit.chain import FIELDS, GENESIS, entry_hash
from audit.errors import ChainBroken


@dataclass(frozen=True, slots=True)
class Verified:
    count: int
    last_seq: int
    last_hash: str


def verify_entries(entries: Iterable[dict[str, Any]]) -> Verified:
    """Check entries given in seq order; raise ChainBroken at the first bad one."""
    expected_seq, prev = 1, GENESIS
    for entry in entries:
        seq = entry["seq"]
        if seq != expected_seq:
            raise ChainBroken(expected_seq, _gap(expected_seq, seq))
        if entry["prev_hash"] != prev:
            raise ChainBroken(
                seq,
                f"prev_hash does not match the hash of seq {seq - 1}"
                " (entries removed, reordered or rewritten)"
                if seq > 1
                else "prev_hash of the first entry is not 64 zeros (the log's start was cut)",
            )
        if isinstance(entry["evidence"], Unparsable):
            raise ChainBroken(seq, "evidence is not valid JSON (the entry was altered)")
        try:
            actual = entry_hash(entry)
        except (CanonicalizationError, TypeError, ValueError) as exc:
            raise ChainBroken(seq, f"entry cannot be canonicalised ({exc})") from None
        if actual != entry["hash"]:
            raise ChainBroken(seq, "content does not match its hash (the entry was altered)")
        prev = entry["hash"]
        expected_seq += 1
    return Verified(count=expected_seq - 1, last_seq=expected_seq - 1, last_hash=prev)


class Unparsable(str):
    """Stored evidence text that is not JSON (reported once the entries before it passed)."""


def verify_rows(rows: Iterable[tuple[Any, ...]]) -> Verified:
    """Like :func:`verify_entries`, for stored rows (tuples in FIELDS order, evidence as text)."""
    return verify_entries(_entries(rows))


def _entries(rows: Iterable[tuple[Any, ...]]) -> Iterator[dict[str, Any]]:
    loads = json.loads
    for row in rows:
        entry = dict(zip(FIELDS, row, strict=True))
        try:
            entry["evidence"] = loads(entry["evidence"])
        except (TypeError, ValueError):
            entry["evidence"] = Unparsable(entry["evidence"])
        yield entry


def _gap(expected: int, seq: Any) -> str:
    if isinstance(seq, int) and seq > expected:
        missing = f"seq {expected}" if seq == expected + 1 else f"seqs {expected} to {seq - 1}"
        return f"{missing} missing (the next entry is seq {seq}): entries were deleted"
    return f"found seq {seq!r} where seq {expected} should be (entries reordered or renumbered)"
