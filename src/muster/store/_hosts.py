"""Hosts: create, update, import (upsert by name), delete.

Deleting a host keeps the host runs that targeted it (``host_id`` becomes
NULL, ``host_name`` stays), so history outlives the inventory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from muster.domain.hosts import Host, TransportKind
from muster.errors import ConflictError, NotFoundError, ValidationError
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
        except IntegrityError as exc:
            raise ConflictError(f"a host named {host.name!r} already exists") from exc

    def upsert_hosts(
        self, items: Sequence[Host], *, update_existing: bool = True
    ) -> tuple[list[str], list[str]]:
        """Create hosts by name, updating (or refusing) existing ones; all or nothing."""
        created: list[str] = []
        updated: list[str] = []
        now = self.clock()
        with self._tx() as tx:
            for host in items:
                existing = tx.conn.execute(
                    select(hosts.c.id).where(hosts.c.name == host.name)
                ).scalar()
                if existing is None:
                    tx.conn.execute(
                        insert(hosts).values(
                            id=host.id or new_id(), created_at=now, updated_at=now, **_columns(host)
                        )
                    )
                    created.append(host.name)
                elif update_existing:
                    tx.conn.execute(
                        update(hosts)
                        .where(hosts.c.id == existing)
                        .values(updated_at=now, **_columns(host))
                    )
                    updated.append(host.name)
                else:
                    raise ConflictError(f"a host named {host.name!r} already exists")
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
        except IntegrityError as exc:
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
