"""Hosts: create, update, import (upsert by name), delete.

Deleting a host keeps the host runs that targeted it (``host_id`` becomes
NULL, ``host_name`` stays), so history outlives the inventory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from sqlalchemy import Connection, RowMapping, bindparam, delete, insert, or_, select, update

from muster.domain.hosts import Host, TransportKind
from muster.errors import ConflictError, NotFoundError, OperationCancelledError, ValidationError
from muster.store._core import StoreCore, new_id
from muster.store._rows import host_record
from muster.store.base import HostRecord
from muster.store.tables import hosts

__all__ = ["HostOps"]

_UPDATABLE = frozenset(
    {
        "name",
        "address",
        "port",
        "user",
        "transport",
        "platform",
        "shells",
        "labels",
        "groups",
        "vars",
        "key_file",
        "credential_ref",
    }
)


#: Hosts written per statement by ``upsert_hosts`` (and between two stop checks).
IMPORT_BATCH: Final = 500
_COLUMNS: Final = tuple(sorted(_UPDATABLE - {"name"}))
_UPDATE_BY_ID: Final = (
    update(hosts)
    .where(hosts.c.id == bindparam("b_id"))
    .values(
        updated_at=bindparam("b_updated_at", type_=hosts.c.updated_at.type),
        **{c: bindparam(f"b_{c}", type_=hosts.c[c].type) for c in _COLUMNS},
    )
)


def _columns(host: Host) -> dict[str, Any]:
    return {
        "name": host.name,
        "address": host.address,
        "port": host.port,
        "user": host.user,
        "transport": TransportKind(host.transport).value,
        "platform": host.platform,
        "shells": list(host.shells),
        "labels": dict(host.labels),
        "groups": list(host.groups),
        "vars": dict(host.vars),
        "key_file": host.key_file,
        "credential_ref": host.credential_ref,
    }


class HostOps(StoreCore):
    @staticmethod
    def _host_row(conn: Connection, id_or_name: str) -> RowMapping:
        row = (
            conn.execute(
                select(hosts).where(or_(hosts.c.id == id_or_name, hosts.c.name == id_or_name))
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFoundError(f"no host {id_or_name!r}")
        return row

    def create_host(self, host: Host) -> HostRecord:
        now = self.clock()
        host_id = host.id or new_id()
        try:
            with self._tx() as tx:
                tx.conn.execute(
                    insert(hosts).values(
                        id=host_id, created_at=now, updated_at=now, **_columns(host)
                    )
                )
                return host_record(self._host_row(tx.conn, host_id))
        except ConflictError as exc:  # the unique name, translated by ``_tx``
            raise ConflictError(f"a host named {host.name!r} already exists") from exc

    def upsert_hosts(
        self,
        items: Sequence[Host],
        *,
        update_existing: bool = True,
        should_stop: Callable[[], bool] | None = None,
    ) -> tuple[list[str], list[str]]:
        """Create hosts by name, updating (or refusing) existing ones; all or nothing.

        Written ``IMPORT_BATCH`` hosts per statement: one lookup, one insert and
        one update per batch. ``should_stop`` is asked before each batch; when
        it answers true the transaction is rolled back and
        :class:`OperationCancelledError` raised, so a client that left or a
        stopping server never keeps a thread writing for nobody.
        """
        created: list[str] = []
        updated: list[str] = []
        ids: dict[str, str] = {}  # every name this import has met, to its row id
        now = self.clock()
        with self._tx() as tx:
            for start in range(0, len(items), IMPORT_BATCH):
                if should_stop is not None and should_stop():
                    raise OperationCancelledError(
                        f"the import stopped after {start} of {len(items)} hosts; "
                        "nothing was stored"
                    )
                batch = items[start : start + IMPORT_BATCH]
                unseen = {h.name for h in batch} - ids.keys()
                found: dict[str, str] = {}
                if unseen:
                    query = select(hosts.c.name, hosts.c.id).where(hosts.c.name.in_(unseen))
                    found = {name: row_id for name, row_id in tx.conn.execute(query).all()}
                inserts: dict[str, dict[str, Any]] = {}
                changes: list[dict[str, Any]] = []
                for host in batch:
                    values = _columns(host)
                    if host.name in inserts:  # named twice in this batch: the last wins
                        inserts[host.name].update(values)
                        continue
                    row_id = ids.get(host.name)
                    if row_id is None and host.name in found:
                        if not update_existing:
                            raise ConflictError(f"a host named {host.name!r} already exists")
                        row_id = ids[host.name] = found[host.name]
                        updated.append(host.name)
                    if row_id is None:
                        new = host.id or new_id()
                        row: dict[str, Any] = {"id": new, "created_at": now, "updated_at": now}
                        row.update(values)
                        inserts[host.name] = row
                        ids[host.name] = new
                        created.append(host.name)
                    else:
                        change = {"b_id": row_id, "b_updated_at": now}
                        change.update({f"b_{c}": values[c] for c in _COLUMNS})
                        changes.append(change)
                if inserts:
                    tx.conn.execute(insert(hosts), list(inserts.values()))
                if changes:
                    tx.conn.execute(_UPDATE_BY_ID, changes)
        return created, updated

    def update_host(self, host_id: str, **changes: Any) -> HostRecord:
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise ValidationError(
                f"unknown host field {sorted(unknown)[0]!r}", field=sorted(unknown)[0]
            )
        values: dict[str, Any] = {}
        for key, value in changes.items():
            if key in ("shells", "groups"):
                value = list(value)
            elif key in ("labels", "vars"):
                value = dict(value)
            elif key == "transport":
                value = TransportKind(value).value
            values[key] = value
        try:
            with self._tx() as tx:
                row = self._host_row(tx.conn, host_id)
                tx.conn.execute(
                    update(hosts)
                    .where(hosts.c.id == row["id"])
                    .values(updated_at=self.clock(), **values)
                )
                return host_record(self._host_row(tx.conn, row["id"]))
        except ConflictError as exc:  # the unique name, translated by ``_tx``
            raise ConflictError(f"a host named {changes.get('name')!r} already exists") from exc

    def get_host(self, id_or_name: str) -> HostRecord:
        with self._read() as conn:
            return host_record(self._host_row(conn, id_or_name))

    def list_hosts(self) -> list[HostRecord]:
        with self._read() as conn:
            rows = conn.execute(select(hosts).order_by(hosts.c.name)).mappings()
            return [host_record(r) for r in rows]

    def delete_host(self, host_id: str) -> None:
        with self._tx() as tx:
            row = self._host_row(tx.conn, host_id)
            tx.conn.execute(delete(hosts).where(hosts.c.id == row["id"]))

    def touch_host(self, host_id: str) -> None:
        """Record that the host answered (``last_contact``)."""
        with self._tx() as tx:
            tx.conn.execute(
                update(hosts).where(hosts.c.id == host_id).values(last_contact=self.clock())
            )
