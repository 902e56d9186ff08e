"""The audit log's keyed hash chain, independent of where records are stored.

Record ``n`` carries ``prev_hash`` (record ``n-1``'s hash; :data:`GENESIS`
for the first), the id of the audit key that chained it, and ``hash =
HMAC-SHA256(audit key, prev_hash || canonical JSON of its fields)``.
:func:`verify_chain` recomputes every link, so editing any field of a
record, removing one, or reordering them is found, and the first bad
sequence number is named. The key lives beside the vault key, outside the
database (``MUSTER_AUDIT_KEY`` or ``<data_dir>/audit.key``, mode 0600): whoever
can write the database but not read that key cannot rebuild a chain that
verifies.

What a chain cannot show by itself is the removal of its *newest* records
(a truncated chain is still a valid chain), nor a rewrite by someone who
holds the key. Anchors catch both: an anchor is a (seq, hash) pair exported
and kept elsewhere (``muster audit anchor``); :func:`verify_chain` checks
that the chain still holds that exact record.

Legacy records: databases from before keyed audit hold records chained with
plain SHA-256 (``key_id`` NULL). They verify as such, but only as a prefix
of the chain that ends in the switch record (action :data:`SWITCH_ACTION`),
the first keyed record, whose HMAC covers the hash of the last legacy
record and so every legacy record before it. A switch record is written
once, when the audit key is created for such a database (or by ``muster
audit seal-legacy``); an unkeyed record after a keyed one, a keyed record
after unkeyed ones that is not the switch, or a chain of only unkeyed
records while a key is configured is a rewrite without the key.

Canonical form: JSON with sorted keys, no whitespace, UTF-8, and ``at`` as
UTC ISO-8601 with microseconds and ``Z``; a naive ``at`` (SQLite returns
them) is taken as UTC, so a record reads back with the same hash on every
database. Details are masked with :mod:`muster.security.masking` *before*
hashing, so what is hashed is exactly what is stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from muster.domain.secret import Secret
from muster.errors import MusterError, ValidationError
from muster.security.keys import generate_key, key_id_of
from muster.security.masking import mask_mapping

__all__ = [
    "GENESIS",
    "SWITCH_ACTION",
    "AuditKeyError",
    "AuditKeys",
    "AuditRecord",
    "VerifyResult",
    "canonical",
    "chain_hash",
    "chain_line",
    "keyed_hash",
    "load_audit_keys",
    "next_record",
    "verify_chain",
]

GENESIS: Final = "0" * 64
#: The first keyed record after legacy (unkeyed) records: the recorded switch point.
SWITCH_ACTION: Final = "audit.keyed"
_KEY_BYTES: Final = 32


class AuditKeyError(MusterError):
    """The audit key is missing, malformed, or not the one the records were chained with."""


class AuditKeys:
    """The key new records are chained with, plus older keys still accepted when verifying.

    Key ids are the first 16 hex digits of SHA-256 of the key (as for vault keys);
    the key itself never leaves this object (its ``repr`` shows the id only).
    """

    __slots__ = ("_keys", "key_id")

    def __init__(self, current: bytes, older: Iterable[bytes] = ()) -> None:
        for key in (current, *older):
            if len(key) != _KEY_BYTES:
                raise AuditKeyError(f"an audit key must be {_KEY_BYTES} bytes, got {len(key)}")
        self.key_id = key_id_of(current)
        self._keys = {key_id_of(k): k for k in older}
        self._keys[self.key_id] = current

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def key(self, key_id: str) -> bytes | None:
        return self._keys.get(key_id)

    def __repr__(self) -> str:
        return f"AuditKeys(key_id={self.key_id})"


def _decode_key(text: str, origin: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise AuditKeyError(f"{origin} is not url-safe base64 of {_KEY_BYTES} bytes") from None
    if len(key) != _KEY_BYTES:
        raise AuditKeyError(f"{origin} must decode to {_KEY_BYTES} bytes, got {len(key)}")
    return key


def load_audit_keys(
    explicit: str, key_file: Path, *, create: bool
) -> tuple[AuditKeys | None, bool]:
    """(keys, created): from ``explicit`` (``MUSTER_AUDIT_KEY``) or ``key_file`` (current
    key on the first line, older keys after; mode 0600), creating the file when allowed.

    ``(None, False)`` when there is no key and ``create`` is false: the caller decides
    whether the database's records make that an error.
    """
    if explicit:
        return AuditKeys(_decode_key(explicit, "MUSTER_AUDIT_KEY")), False
    if key_file.exists():
        mode = key_file.stat().st_mode & 0o777
        if mode & 0o077:
            raise AuditKeyError(
                f"audit key file {key_file} is readable by others (mode {mode:o}); chmod 600 it"
            )
        lines = [ln.strip() for ln in key_file.read_text(encoding="ascii").splitlines()]
        keys = [
            _decode_key(ln, f"audit key file {key_file}") for ln in lines if ln and ln[0] != "#"
        ]
        if not keys:
            raise AuditKeyError(f"audit key file {key_file} holds no key")
        return AuditKeys(keys[0], keys[1:]), False
    if not create:
        return None, False
    text = generate_key()
    key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(text + "\n")
    return AuditKeys(_decode_key(text, f"audit key file {key_file}")), True


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
    #: The audit key that chained this record; ``None``: a legacy SHA-256 record.
    key_id: str | None = None

    def body(self) -> dict[str, Any]:
        """The hashed fields (everything but ``hash``) in canonical shape.

        A legacy record's body has no ``key_id``, so it hashes as it was written.
        """
        body: dict[str, Any] = {
            "seq": self.seq,
            "at": _iso(self.at),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "address": self.address,
            "details": self.details,
            "prev_hash": self.prev_hash,
        }
        if self.key_id is not None:
            body["key_id"] = self.key_id
        return body


def canonical(body: Mapping[str, Any]) -> bytes:
    """Deterministic JSON bytes; refuses values JSON cannot hold (NaN, objects)."""
    try:
        return json.dumps(
            body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"details: not JSON-serialisable: {exc}", field="details") from exc


def chain_hash(prev_hash: str, canonical_record: bytes) -> str:
    """The legacy link: SHA-256 hex of the previous hash and the record's canonical bytes.

    Anyone can compute it; it is kept only to verify records written before keyed audit.
    """
    h = hashlib.sha256()
    h.update(prev_hash.encode("ascii"))
    h.update(canonical_record)
    return h.hexdigest()


def keyed_hash(key: bytes, prev_hash: str, canonical_record: bytes) -> str:
    """HMAC-SHA256 hex, under the audit key, of the previous hash and the canonical bytes."""
    mac = hmac.new(key, prev_hash.encode("ascii"), hashlib.sha256)
    mac.update(canonical_record)
    return mac.hexdigest()


def next_record(
    prev: AuditRecord | None,
    *,
    keys: AuditKeys,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    address: str | None = None,
    details: Mapping[str, Any] | None = None,
    secret_keys: Iterable[str] = (),
    secrets: Iterable[str | Secret] = (),
) -> AuditRecord:
    """The record that follows ``prev`` (``None``: the first), masked and chained
    under ``keys``' current key.

    Appending must be serialised by the store (one writer at a time, the
    head read and the insert in one transaction), or two records would claim
    the same predecessor.
    """
    masked = mask_mapping(dict(details or {}), secret_keys, secrets)
    # A JSON round trip makes the stored value exactly the hashed one (tuples -> lists).
    clean: dict[str, Any] = json.loads(canonical(masked))
    seq = 1 if prev is None else prev.seq + 1
    prev_hash = GENESIS if prev is None else prev.hash
    kid = keys.key_id
    draft = AuditRecord(seq, at, actor, action, target, address, clean, prev_hash, "", kid)
    _raw, digest = _seal(draft, keys)
    return AuditRecord(seq, at, actor, action, target, address, clean, prev_hash, digest, kid)


def _seal(draft: AuditRecord, keys: AuditKeys) -> tuple[bytes, str]:
    """The canonical bytes of ``draft``'s body and their keyed hash (its ``hash``)."""
    key = keys.key(draft.key_id) if draft.key_id is not None else None
    assert key is not None
    raw = canonical(draft.body())
    return raw, keyed_hash(key, draft.prev_hash, raw)


def chain_line(
    prev: tuple[int, str] | None,
    *,
    keys: AuditKeys,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    address: str | None,
    details: Mapping[str, Any],
) -> tuple[int, str, bytes]:
    """(seq, hash, JSON line) of the record after ``prev`` = (seq, hash), for a
    record kept as a line of text (the local audit file) rather than a row.

    ``details`` must already be masked and JSON-compatible. The line is the
    canonical body with ``hash`` added, so one encoding serves the hash and the
    file (a fleet run writes two records per host); read back it is the same
    record :func:`next_record` would have made.
    """
    seq = 1 if prev is None else prev[0] + 1
    prev_hash = GENESIS if prev is None else prev[1]
    draft = AuditRecord(
        seq, at, actor, action, target, address, details, prev_hash, "", keys.key_id
    )
    raw, digest = _seal(draft, keys)
    return seq, digest, raw[:-1] + b',"hash":"' + digest.encode("ascii") + b'"}'


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str | None = None
    #: The last good (seq, hash): export it as an anchor for later verifications.
    head: tuple[int, str] | None = None
    #: How many of the records checked are legacy (unkeyed SHA-256) records.
    legacy: int = 0
    #: How many anchors were found in the chain exactly as exported.
    anchors: int = 0


def verify_chain(
    records: Iterable[AuditRecord],
    keys: AuditKeys | None,
    *,
    start: tuple[int, str] | None = None,
    anchors: Sequence[tuple[int, str]] = (),
) -> VerifyResult:
    """Check records in seq order; stop at the first bad one and name it.

    ``keys``: the configured audit keys (``None``: none configured, so only
    legacy records can verify). ``start`` = (seq, hash) of the record just
    before the first one given, for verifying from a checkpoint (legacy
    records are then not accepted); by default the chain must start at seq 1
    on :data:`GENESIS`. ``anchors``: (seq, hash) pairs exported earlier; the
    chain must still hold each of those records unchanged.
    """
    want_seq, want_prev = (1, GENESIS) if start is None else (start[0] + 1, start[1])
    pinned = dict(anchors)
    checked = legacy = found = 0
    keyed_seen = start is not None
    head = start
    for rec in records:
        problem = _link_problem(rec, want_seq, want_prev)
        if problem is None:
            problem = _mac_problem(rec, keys, keyed_seen=keyed_seen, after_legacy=legacy > 0)
        if problem is None and rec.seq in pinned:
            if _same(pinned[rec.seq], rec.hash):
                found += 1
            else:
                problem = "differs from the exported anchor for this seq (record rewritten)"
        if problem is not None:
            return VerifyResult(False, checked, want_seq, problem, head, legacy, found)
        checked += 1
        if rec.key_id is None:
            legacy += 1
        else:
            keyed_seen = True
        head = (rec.seq, rec.hash)
        want_seq, want_prev = rec.seq + 1, rec.hash
    missing = sorted(seq for seq in pinned if seq >= want_seq)
    if missing:
        return VerifyResult(
            False,
            checked,
            want_seq,
            f"chain ends at seq {want_seq - 1}, but an exported anchor names seq {missing[0]} "
            "(newest records removed)",
            head,
            legacy,
            found,
        )
    if legacy and not keyed_seen and keys is not None:
        return VerifyResult(
            False,
            checked,
            want_seq,
            f"all {legacy} records are unkeyed although audit key {keys.key_id} is configured "
            "(rewritten without the key; if this database predates keyed audit and has "
            "not been sealed yet, run `muster audit seal-legacy`)",
            head,
            legacy,
            found,
        )
    return VerifyResult(True, checked, None, None, head, legacy, found)


def _link_problem(rec: AuditRecord, want_seq: int, want_prev: str) -> str | None:
    if rec.seq != want_seq:
        return f"expected seq {want_seq}, found {rec.seq}: " + (
            "records missing" if rec.seq > want_seq else "records out of order"
        )
    if rec.prev_hash != want_prev:
        return "prev_hash does not match the previous record (removed or replaced)"
    return None


def _mac_problem(
    rec: AuditRecord, keys: AuditKeys | None, *, keyed_seen: bool, after_legacy: bool
) -> str | None:
    try:
        canon = canonical(rec.body())
    except ValidationError:
        return "the record's content cannot be read back (edited)"
    if rec.key_id is None:
        if keyed_seen:
            return "unkeyed record after keyed records (rewritten without the audit key)"
        if not _same(chain_hash(rec.prev_hash, canon), rec.hash):
            return "hash does not match the record's content (edited)"
        return None
    key = keys.key(rec.key_id) if keys is not None else None
    if key is None:
        configured = ", ".join(sorted(keys.key_ids)) if keys is not None else "none"
        return (
            f"chained with audit key {rec.key_id}, which is not configured "
            f"(configured: {configured}): set MUSTER_AUDIT_KEY or restore the audit key file"
        )
    if not _same(keyed_hash(key, rec.prev_hash, canon), rec.hash):
        return "HMAC does not match the record's content (edited, or rebuilt without the key)"
    if after_legacy and not keyed_seen and rec.action != SWITCH_ACTION:
        return (
            f"first keyed record after unkeyed ones is not the {SWITCH_ACTION} switch "
            "(the unkeyed records before it were rewritten without the audit key)"
        )
    return None


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
