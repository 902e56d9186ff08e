"""The audit log table: append (HMAC-chained), query, and verify.

Appends are serialised: on SQLite by the ``BEGIN IMMEDIATE`` every write
transaction takes, on PostgreSQL by a transaction-level advisory lock; the
primary key on ``seq`` (assigned as head + 1) is the last line of defence,
so two records can never claim the same predecessor.

:func:`append_audit` takes a connection so that a change and its audit
record commit together (call it inside the store transaction that makes the
change); ``AuditOps.record_audit`` is the stand-alone form.

The audit key belongs to the database, not to one store object: the edge
(:func:`open_audit_keys`, called by ``open_store``, or
:meth:`AuditOps.load_audit_key` for a store built elsewhere) loads it once
and registers it for the engine, and every store over that engine appends
and verifies with it. Appending without a key is
an :class:`~muster.security.audit.AuditKeyError`, never an unkeyed record.
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from sqlalchemy import Connection, Engine, RowMapping, func, insert, select, text

from muster.config import Settings
from muster.domain.secret import Secret
from muster.security.audit import (
    SWITCH_ACTION,
    AuditKeyError,
    AuditKeys,
    AuditRecord,
    VerifyResult,
    load_audit_keys,
    next_record,
    verify_chain,
)
from muster.store._core import StoreCore, utcnow
from muster.store.base import Page
from muster.store.security_tables import audit_log

__all__ = [
    "AuditOps",
    "append_audit",
    "audit_keys_for",
    "audit_record",
    "open_audit_keys",
    "use_audit_keys",
]

_AUDIT_LOCK: Final = 0x6D75737465720A0D
_KEYS: weakref.WeakKeyDictionary[Engine, AuditKeys] = weakref.WeakKeyDictionary()


def use_audit_keys(engine: Engine, keys: AuditKeys) -> None:
    """Every store over ``engine`` chains and verifies audit records with ``keys``."""
    _KEYS[engine] = keys


def audit_keys_for(engine: Engine) -> AuditKeys | None:
    return _KEYS.get(engine)


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _AUDIT_LOCK})


def _head(conn: Connection) -> RowMapping | None:
    return (
        conn.execute(select(audit_log).order_by(audit_log.c.seq.desc()).limit(1)).mappings().first()
    )


def _newest_key_id(conn: Connection) -> str | None:
    """The key id of the newest keyed record (an index walk from the end, not a scan)."""
    return conn.execute(
        select(audit_log.c.key_id)
        .where(audit_log.c.key_id.is_not(None))
        .order_by(audit_log.c.seq.desc())
        .limit(1)
    ).scalar()


def open_audit_keys(engine: Engine, settings: Settings, *, create: bool) -> AuditKeys | None:
    """Load the database's audit key, register it for ``engine``, and return it.

    ``create``: a writer starting (server, worker, ``muster user``): a missing key
    file is created (0600) when the database holds no keyed record, and for a
    database from before keyed audit the switch record is appended at once. A
    reader (``muster audit verify``) creates nothing and may get ``None``.

    Errors (:class:`AuditKeyError`), never a silent fallback: keyed records and
    no key configured; keyed records under a key that is not configured; a
    writer on a database of unkeyed records whose key already existed (the
    switch cannot be told from a rewrite then: ``muster audit seal-legacy``).
    """
    explicit = settings.audit_key.get_secret_value()
    key_file = settings.audit_key_file
    with engine.connect() as conn:
        newest = _newest_key_id(conn)
        head = _head(conn)
    if newest is not None and not explicit and not key_file.exists():
        raise AuditKeyError(
            f"the audit log holds records chained with audit key {newest}, but no audit key "
            f"is configured: set MUSTER_AUDIT_KEY or restore the audit key file {key_file}"
        )
    keys, created = load_audit_keys(explicit, key_file, create=create)
    if keys is None:
        return None
    if newest is not None and keys.key(newest) is None:
        raise AuditKeyError(
            f"the audit log's newest records are chained with audit key {newest}, which is "
            f"not configured (configured: {', '.join(sorted(keys.key_ids))}): set "
            "MUSTER_AUDIT_KEY to that key, or list it after the current one in the key file"
        )
    use_audit_keys(engine, keys)
    if create and head is not None and newest is None:
        if not created:
            raise AuditKeyError(
                f"the audit log holds {head['seq']} unkeyed records from before keyed audit "
                f"and no switch record, but audit key {keys.key_id} already existed: check "
                "them with `muster audit verify`, then seal them with `muster audit "
                "seal-legacy`"
            )
        seal_legacy(engine)
    return keys


def seal_legacy(engine: Engine) -> AuditRecord:
    """Append the switch record after a chain of only unkeyed (legacy) records.

    The legacy records are verified first (as the SHA-256 chain they are); the
    switch's HMAC then covers the last one's hash, and so all of them.
    """
    keys = audit_keys_for(engine)
    if keys is None:
        raise AuditKeyError(
            "no audit key is configured to seal the unkeyed records with: set "
            "MUSTER_AUDIT_KEY, or start the server once (it creates the key file and seals)"
        )
    with engine.begin() as conn:
        _lock(conn)
        if _newest_key_id(conn) is not None:
            raise AuditKeyError("the audit log already holds keyed records: nothing to seal")
        rows = conn.execute(select(audit_log).order_by(audit_log.c.seq)).mappings()
        legacy = verify_chain((audit_record(r) for r in rows), None)
        if not legacy.ok:
            raise AuditKeyError(
                f"the unkeyed records do not verify, so they are not sealed: seq "
                f"{legacy.first_bad_seq}: {legacy.problem}"
            )
        return append_audit(
            conn,
            actor="muster",
            action=SWITCH_ACTION,
            target="audit",
            details={"legacy_records": legacy.checked, "key_id": keys.key_id},
        )


def audit_record(r: RowMapping) -> AuditRecord:
    return AuditRecord(
        seq=int(r["seq"]),
        at=r["at"],
        actor=r["actor"],
        action=r["action"],
        target=r["target"],
        address=r["address"],
        details=r["details"],
        prev_hash=r["prev_hash"],
        hash=r["hash"],
        key_id=r["key_id"],
    )


def append_audit(
    conn: Connection,
    *,
    actor: str,
    action: str,
    target: str,
    address: str | None = None,
    details: Mapping[str, Any] | None = None,
    secret_keys: Iterable[str] = (),
    secrets: Iterable[str | Secret] = (),
    at: dt.datetime | None = None,
) -> AuditRecord:
    """Append one record inside the caller's transaction; details are masked first."""
    keys = audit_keys_for(conn.engine)
    if keys is None:
        raise AuditKeyError(
            "no audit key is configured for this database, so no audit record can be "
            "written: set MUSTER_AUDIT_KEY or let the server create its audit key file"
        )
    _lock(conn)
    head = _head(conn)
    rec = next_record(
        audit_record(head) if head is not None else None,
        keys=keys,
        at=at or utcnow(),
        # Cut to the columns' widths before hashing, so what is stored is what was hashed.
        actor=actor[:128],
        action=action[:64],
        target=target[:256],
        address=address[:64] if address else address,
        details=details,
        secret_keys=secret_keys,
        secrets=secrets,
    )
    conn.execute(
        insert(audit_log).values(
            seq=rec.seq,
            at=rec.at,
            actor=rec.actor,
            action=rec.action,
            target=rec.target,
            address=rec.address,
            details=dict(rec.details),
            prev_hash=rec.prev_hash,
            hash=rec.hash,
            key_id=rec.key_id,
        )
    )
    return rec


class AuditOps(StoreCore):
    def record_audit(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        address: str | None = None,
        details: Mapping[str, Any] | None = None,
        secret_keys: Iterable[str] = (),
        secrets: Iterable[str | Secret] = (),
    ) -> AuditRecord:
        with self._tx() as tx:
            return append_audit(
                tx.conn,
                actor=actor,
                action=action,
                target=target,
                address=address,
                details=details,
                secret_keys=secret_keys,
                secrets=secrets,
                at=self.clock(),
            )

    def list_audit(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int = 100,
        offset: int = 0,
        target: str | None = None,
    ) -> Page[AuditRecord]:
        """Newest first. ``action`` (and ``target``) ending in ``*`` matches a prefix
        (``script.*``, ``user:*``); an action ending in ``.`` does too."""
        conds = []
        if actor is not None:
            conds.append(audit_log.c.actor == actor)
        for column, wanted in ((audit_log.c.action, action), (audit_log.c.target, target)):
            if wanted is None:
                continue
            if wanted.endswith("*") or (column is audit_log.c.action and wanted.endswith(".")):
                prefix = wanted.rstrip("*")
                conds.append(func.substr(column, 1, len(prefix)) == prefix)
            else:
                conds.append(column == wanted)
        if since is not None:
            conds.append(audit_log.c.at >= since)
        if until is not None:
            conds.append(audit_log.c.at < until)
        limit = max(1, min(limit, 1000))
        with self._read() as conn:
            total = conn.execute(
                select(func.count()).select_from(audit_log).where(*conds)
            ).scalar_one()
            rows = conn.execute(
                select(audit_log)
                .where(*conds)
                .order_by(audit_log.c.seq.desc())
                .limit(limit)
                .offset(max(0, offset))
            ).mappings()
            items = tuple(audit_record(r) for r in rows)
        return Page(items, int(total), limit, max(0, offset))

    def iter_audit(self, *, after_seq: int = 0, batch: int = 1000) -> Iterator[AuditRecord]:
        """Every record in seq order, read in batches (memory stays flat)."""
        last = after_seq
        while True:
            with self._read() as conn:
                rows = conn.execute(
                    select(audit_log)
                    .where(audit_log.c.seq > last)
                    .order_by(audit_log.c.seq)
                    .limit(batch)
                ).mappings()
                chunk = [audit_record(r) for r in rows]
            yield from chunk
            if len(chunk) < batch:
                return
            last = chunk[-1].seq

    def verify_audit(self, *, anchors: Sequence[tuple[int, str]] = ()) -> VerifyResult:
        """The whole chain under this database's audit key, and every exported anchor."""
        return verify_chain(self.iter_audit(), audit_keys_for(self.engine), anchors=anchors)

    def load_audit_key(self, settings: Settings, *, create: bool) -> None:
        """Load (or, with ``create``, make) the audit key for this store's database,
        unless it already is: a store built without :func:`open_store` is keyed like
        one it opens, so the server never runs without its audit key."""
        if audit_keys_for(self.engine) is None:
            open_audit_keys(self.engine, settings, create=create)

    def seal_legacy_audit(self) -> AuditRecord:
        return seal_legacy(self.engine)
