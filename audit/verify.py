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
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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


def verify_rows(rows: Iterable[Sequence[Any]], *, canonical_from: int = 1) -> Verified:
    """Check stored rows (tuples in COLUMNS order, evidence as text) given in seq order; raise
    ChainBroken at the first bad one. ``canonical_from``: see :func:`check_row`."""
    expected_seq, prev = 1, GENESIS
    for row in rows:
        seq = row[_SEQ]
        if seq != expected_seq:
            raise ChainBroken(expected_seq, _gap(expected_seq, seq))
        if row[_PREV] != prev:
            raise ChainBroken(
                seq,
                f"prev_hash does not match the hash of seq {seq - 1}"
                " (entries removed, reordered or rewritten)"
                if seq > 1
                else "prev_hash of the first entry is not 64 zeros (the log's start was cut)",
            )
        check_row(row, canonical_from=canonical_from)
        prev = row[_HASH]
        expected_seq += 1
    return Verified(count=expected_seq - 1, last_seq=expected_seq - 1, last_hash=prev)


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
