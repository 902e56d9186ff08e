"""The audit log's hash chain, independent of where records are stored.

Record ``n`` carries ``prev_hash`` (record ``n-1``'s hash; :data:`GENESIS`
for the first) and ``hash = SHA-256(prev_hash || canonical JSON of its
fields)``. :func:`verify_chain` recomputes every link, so editing any field
of a record, removing one, or reordering them is found, and the first bad
sequence number is named.

What a chain cannot show by itself is the removal of its *newest* records
(a truncated chain is still a valid chain). Give ``verify_chain`` an anchor
kept elsewhere (``expect_head``: the last seq and hash, e.g. from a previous
``muster audit verify`` run or an exported copy) to catch that as well.

Canonical form: JSON with sorted keys, no whitespace, UTF-8, and ``at`` as
UTC ISO-8601 with microseconds and ``Z``; a naive ``at`` (SQLite returns
them) is taken as UTC, so a record reads back with the same hash on every
database. Details are masked with :mod:`muster.security.masking` *before*
hashing, so what is hashed is exactly what is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from muster.domain.secret import Secret
from muster.errors import ValidationError
from muster.security.masking import mask_mapping

__all__ = [
    "GENESIS",
    "AuditRecord",
    "VerifyResult",
    "canonical",
    "chain_hash",
    "next_record",
    "verify_chain",
]

GENESIS: Final = "0" * 64


def _iso(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit entry. ``details`` is JSON-compatible and already masked."""

    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    address: str | None
    details: Mapping[str, Any]
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        """The hashed fields (everything but ``hash``) in canonical shape."""
        return {
            "seq": self.seq,
            "at": _iso(self.at),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "address": self.address,
            "details": self.details,
            "prev_hash": self.prev_hash,
        }


def canonical(body: Mapping[str, Any]) -> bytes:
    """Deterministic JSON bytes; refuses values JSON cannot hold (NaN, objects)."""
    try:
        return json.dumps(
            body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"details: not JSON-serialisable: {exc}", field="details") from exc


def chain_hash(prev_hash: str, canonical_record: bytes) -> str:
    """SHA-256 hex of the previous hash followed by the record's canonical bytes."""
    h = hashlib.sha256()
    h.update(prev_hash.encode("ascii"))
    h.update(canonical_record)
    return h.hexdigest()


def next_record(
    prev: AuditRecord | None,
    *,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    address: str | None = None,
    details: Mapping[str, Any] | None = None,
    secret_keys: Iterable[str] = (),
    secrets: Iterable[str | Secret] = (),
) -> AuditRecord:
    """The record that follows ``prev`` (``None``: the first), masked and hashed.

    Appending must be serialised by the store (one writer at a time, the
    head read and the insert in one transaction), or two records would claim
    the same predecessor.
    """
    masked = mask_mapping(dict(details or {}), secret_keys, secrets)
    # A JSON round trip makes the stored value exactly the hashed one (tuples -> lists).
    clean: dict[str, Any] = json.loads(canonical(masked))
    seq = 1 if prev is None else prev.seq + 1
    prev_hash = GENESIS if prev is None else prev.hash
    draft = AuditRecord(seq, at, actor, action, target, address, clean, prev_hash, "")
    return AuditRecord(
        seq, at, actor, action, target, address, clean, prev_hash,
        chain_hash(prev_hash, canonical(draft.body())),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str | None = None
    #: The last good (seq, hash): keep it as the anchor for the next verification.
    head: tuple[int, str] | None = None


def verify_chain(
    records: Iterable[AuditRecord],
    *,
    start: tuple[int, str] | None = None,
    expect_head: tuple[int, str] | None = None,
) -> VerifyResult:
    """Check records in seq order; stop at the first bad one.

    ``start`` = (seq, hash) of the record just before the first one given,
    for verifying from a checkpoint; by default the chain must start at seq 1
    on :data:`GENESIS`. ``expect_head`` catches removal of the newest records.
    """
    want_seq, want_prev = (1, GENESIS) if start is None else (start[0] + 1, start[1])
    checked = 0
    head = start
    for rec in records:
        problem = None
        if rec.seq != want_seq:
            problem = f"expected seq {want_seq}, found {rec.seq}: " + (
                "records missing" if rec.seq > want_seq else "records out of order"
            )
        elif rec.prev_hash != want_prev:
            problem = "prev_hash does not match the previous record (removed or replaced)"
        else:
            try:
                recomputed = chain_hash(rec.prev_hash, canonical(rec.body()))
            except ValidationError:
                recomputed = ""
            if not _same(recomputed, rec.hash):
                problem = "hash does not match the record's content (edited)"
        if problem is not None:
            return VerifyResult(False, checked, want_seq, problem, head)
        checked += 1
        head = (rec.seq, rec.hash)
        want_seq, want_prev = rec.seq + 1, rec.hash
    if expect_head is not None and head != expect_head:
        return VerifyResult(
            False,
            checked,
            want_seq,
            f"chain ends at {head[0] if head else 0}, the anchor says {expect_head[0]} "
            "(newest records removed or rewritten)",
            head,
        )
    return VerifyResult(True, checked, None, None, head)


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
