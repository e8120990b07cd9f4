"""Verifying the chain: every seq present, every link and every hash right, every evidence text
exactly the bytes its hash covers.

Checks run entry by entry in seq order and stop at the first bad entry, so the seq reported is
the first one that is wrong: a missing seq (an entry deleted), a ``prev_hash`` that is not the
hash of the entry before it (entries removed, reordered or rewritten), or stored bytes that do
not hash to the stored ``hash`` (an entry altered).

An entry is hashed as stored: its columns in JCS and its evidence text spliced in unchanged
(:func:`audit.chain.row_hash`), so a match proves the evidence text is the JCS encoding that was
hashed, byte for byte (no duplicate key, no other spelling), without parsing it. Only a mismatch
is looked into, to say why: evidence that is not JSON or holds a key twice, evidence not in its
canonical form, or other content altered. Entries before the head's ``canonical_from`` (stored
before schema 0002) may instead hold the old writer's encoding of the same object
(:func:`audit.chain.legacy_evidence_text`), where that differs from JCS.

A log may hold format-1 and format-2 entries (:mod:`audit.chain`), in any mix: each row is
hashed in the format it was written in (without the format-2 keys when its ``format`` is NULL,
with them when it is 2), so nothing is rewritten. A row in neither format (an unknown
``format``, or subject columns on a format-1 row) is an integrity failure at its seq.
Checkpoints sign a seq and a hash, whatever the format of the entries they cover.

A long log is checked in parts on every core (:mod:`audit.parallel`): :func:`check_part` checks
a run of rows, :func:`link` joins the parts in seq order, so the first bad seq and its message
are those of a single pass (:func:`verify_rows`). :func:`verify_from` checks the entries from a
signed checkpoint's seq on (``audit verify --since-checkpoint``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from rfc8785 import CanonicalizationError

from audit.chain import (
    COLUMNS,
    GENESIS,
    EvidenceError,
    FormatError,
    evidence_text,
    legacy_evidence_text,
    parse_evidence,
    row_hash,
)
from audit.errors import ChainBroken

_SEQ, _PREV, _HASH, _EVIDENCE = (
    COLUMNS.index(f) for f in ("seq", "prev_hash", "hash", "evidence")
)


@dataclass(frozen=True, slots=True)
class Verified:
    count: int
    last_seq: int
    last_hash: str


def verify_rows(
    rows: Iterable[Sequence[Any]],
    *,
    canonical_from: int = 1,
    first_seq: int = 1,
    prev_hash: str = GENESIS,
) -> Verified:
    """Check stored rows (tuples in COLUMNS order, evidence as text) given in seq order; raise
    ChainBroken at the first bad one. ``canonical_from``: see :func:`check_row`. The first row
    must be ``first_seq`` and link to ``prev_hash``: the whole log by default, the entries
    after a checkpoint with the checkpoint's seq + 1 and hash."""
    part = check_part(rows, canonical_from=canonical_from, first_seq=first_seq,
                      prev_hash=prev_hash)
    return link([part], first_seq=first_seq, prev_hash=prev_hash)


def verify_from(
    rows: Iterable[Sequence[Any]], *, seq: int, hash: str, canonical_from: int = 1
) -> Verified:
    """Check the rows from entry ``seq`` on (given in seq order), ``hash`` being the hash of
    entry ``seq`` that a signed checkpoint vouches for: that entry must hold it and hash to
    it, each later one link to the one before and hash to its own hash; raise ChainBroken at
    the first bad one. The Verified counts the entries after ``seq``. ``seq`` 0 vouches for
    the start of the log: ``hash`` is then what the first entry links to."""
    if seq == 0:
        return verify_rows(rows, canonical_from=canonical_from, prev_hash=hash)
    found = iter(rows)
    first = next(found, None)
    if first is None or first[_SEQ] != seq:
        raise ChainBroken(seq, f"seq {seq}, the checkpoint's, is missing (entries deleted)")
    if first[_HASH] != hash:
        raise ChainBroken(seq, "its hash differs from the signed checkpoint's (the log was"
                               f" rewritten at or before seq {seq})")
    check_row(first, canonical_from=canonical_from)
    return verify_rows(found, canonical_from=canonical_from, first_seq=seq + 1, prev_hash=hash)


@dataclass(frozen=True, slots=True)
class Part:
    """What :func:`check_part` found in one run of rows, consecutive in seq order: how many
    rows it read (the bad one included), the first row's ``seq`` and ``prev_hash`` (left for
    :func:`link` to check unless ``linked``), the last row's ``seq`` and ``hash``, and the
    first problem (seq, why)."""

    count: int
    first_seq: Any = None
    first_prev: Any = None
    last_seq: Any = None
    last_hash: Any = None
    problem: tuple[Any, str] | None = None
    linked: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, found: dict[str, Any]) -> Part:
        problem = found.get("problem")
        return cls(**(found | {"problem": None if problem is None else tuple(problem)}))


def check_part(
    rows: Iterable[Sequence[Any]],
    *,
    canonical_from: int = 1,
    first_seq: int | None = None,
    prev_hash: str | None = None,
) -> Part:
    """Check a run of rows in seq order, each against its own hash and each after the first
    against the one before it; stop at the first problem (a ChainBroken met while reading
    included). With ``first_seq`` and ``prev_hash`` the first row is checked against them too
    (a whole chain); without, a part of one, whose first row :func:`link` checks against the
    part before."""
    count, prev = 0, prev_hash
    expected: Any = first_seq
    seq: Any = None
    first: tuple[Any, Any] = (None, None)
    try:
        for row in rows:
            seq = row[_SEQ]
            count += 1
            if count > 1 or first_seq is not None:
                if seq != expected:
                    raise ChainBroken(expected, _gap(expected, seq))
                if row[_PREV] != prev:
                    raise ChainBroken(seq, _unlinked(seq))
            else:
                first = (seq, row[_PREV])
                if type(seq) is not int:  # no entry's seq: link() names the gap here
                    return Part(1, *first)
            check_row(row, canonical_from=canonical_from)
            prev = row[_HASH]
            expected = seq + 1
    except ChainBroken as exc:
        return Part(count, *first, seq, prev, (exc.seq, exc.problem), first_seq is not None)
    return Part(count, *first, seq if count else None, prev if count else None, None,
                first_seq is not None)


def link(parts: Iterable[Part], *, first_seq: int = 1, prev_hash: str = GENESIS) -> Verified:
    """Join consecutive parts of a chain in seq order, from ``first_seq`` linked to
    ``prev_hash``; raise ChainBroken at the first bad entry, as checking the rows one by one
    would."""
    expected, prev = first_seq, prev_hash
    for part in parts:
        if part.count and not part.linked:
            if part.first_seq != expected:
                raise ChainBroken(expected, _gap(expected, part.first_seq))
            if part.first_prev != prev:
                raise ChainBroken(part.first_seq, _unlinked(part.first_seq))
        if part.problem is not None:
            raise ChainBroken(*part.problem)
        if part.count:
            expected, prev = part.last_seq + 1, part.last_hash
    return Verified(count=expected - first_seq, last_seq=expected - 1, last_hash=prev)


def _unlinked(seq: Any) -> str:
    if seq > 1:
        return (f"prev_hash does not match the hash of seq {seq - 1}"
                " (entries removed, reordered or rewritten)")
    return "prev_hash of the first entry is not 64 zeros (the log's start was cut)"


def check_row(row: Sequence[Any], *, canonical_from: int = 1) -> None:
    """Raise ChainBroken unless the stored row, exactly as stored, hashes to its ``hash``.

    Rows with ``seq < canonical_from`` may hold the pre-0002 encoding of their evidence where it
    differs from JCS; every other row holds JCS text.
    """
    seq, text = row[_SEQ], row[_EVIDENCE]
    try:
        if row_hash(row) == row[_HASH]:
            return
        evidence = parse_evidence(text)
        canonical = evidence_text(evidence)
        if text != canonical:
            legacy = isinstance(seq, int) and seq < canonical_from
            if not legacy or text != legacy_evidence_text(evidence):
                raise ChainBroken(seq, "evidence is not stored in its canonical (RFC 8785) form"
                                       " (the entry was altered)")
            if row_hash(row, canonical) == row[_HASH]:
                return
    except (EvidenceError, FormatError) as exc:
        raise ChainBroken(seq, str(exc)) from None
    except TypeError:
        raise ChainBroken(seq, "evidence is not JSON text (the entry was altered)") from None
    except (CanonicalizationError, ValueError, RecursionError) as exc:
        raise ChainBroken(seq, f"entry cannot be canonicalised ({exc})") from None
    raise ChainBroken(seq, "content does not match its hash (the entry was altered)")


def _gap(expected: int, seq: Any) -> str:
    if isinstance(seq, int) and seq > expected:
        missing = f"seq {expected}" if seq == expected + 1 else f"seqs {expected} to {seq - 1}"
        return f"{missing} missing (the next entry is seq {seq}): entries were deleted"
    return f"found seq {seq!r} where seq {expected} should be (entries reordered or renumbered)"
