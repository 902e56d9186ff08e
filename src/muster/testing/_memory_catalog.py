"""Scripts and their versions, hosts, and the console's and metrics' reads, in memory.

The rules are the SQL store's (``store/_scripts.py``, ``_hosts.py``,
``console_reads.py``, ``_metrics.py``): identical content adds no version, a
deleted script keeps its versions, a host import is all or nothing.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any, Final

from muster.domain.hosts import Host, TransportKind
from muster.domain.params import ParameterSpec
from muster.domain.scripts import ScriptVersion
from muster.domain.states import TERMINAL_STATES, HostRunState
from muster.errors import ConflictError, NotFoundError, OperationCancelledError, ValidationError
from muster.store.base import (
    ExecutionRecord,
    FleetFacets,
    GridCell,
    HostRecord,
    HostRunRecord,
    Page,
    RunDigest,
    SavedScript,
    ScriptRecord,
    StoreCounts,
    VersionRecord,
)
from muster.testing._memory_core import MemoryCore, new_id
from muster.testing._memory_rows import ScriptRow, as_json, fresh_host

__all__ = ["CatalogOps"]

S = HostRunState

#: Hosts written between two ``should_stop`` checks of ``upsert_hosts`` (as the SQL store).
IMPORT_BATCH: Final = 500
#: Characters of the tails the console compares when grouping results.
_DIGEST_CHARS: Final = 200

_HOST_FIELDS: Final = frozenset(
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


def _host_columns(host: Host) -> dict[str, Any]:
    return {
        "name": host.name,
        "address": host.address,
        "port": host.port,
        "user": host.user,
        "transport": TransportKind(host.transport),
        "platform": host.platform,
        "shells": tuple(host.shells),
        "labels": dict(host.labels),
        "groups": tuple(host.groups),
        "vars": dict(host.vars),
        "key_file": host.key_file,
        "credential_ref": host.credential_ref,
    }


class CatalogOps(MemoryCore):
    """Scripts, hosts and reads of ``InMemoryStore``."""

    def save_script(
        self,
        content: ScriptVersion,
        *,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        created_by: str | None = None,
    ) -> SavedScript:
        with self._tx():
            now = self.clock()
            row = next((s for s in self._scripts.values() if s.name == content.name), None)
            if row is None:
                row = ScriptRow(
                    id=new_id(),
                    name=content.name,
                    description=description if description is not None else content.description,
                    tags=list(tags or ()),
                    latest_version=0,
                    created_at=now,
                    updated_at=now,
                )
                self._scripts[row.id] = row
            latest = row.versions.get(row.latest_version)
            created = latest is None or latest.content_hash != content.content_hash
            if created:
                number = row.latest_version + 1
                row.versions[number] = VersionRecord(
                    script_id=row.id,
                    script_name=row.name,
                    number=number,
                    content_hash=content.content_hash,
                    shell=content.shell,
                    body=content.body,
                    # As stored and read back: the same round trip as the SQL store's JSON.
                    parameters=tuple(
                        ParameterSpec.from_dict(as_json(p.to_dict())) for p in content.parameters
                    ),
                    timeout=content.timeout,
                    requires_approval=content.requires_approval,
                    idempotent=content.idempotent,
                    libraries=content.libraries,
                    description=content.description,
                    created_at=now,
                    created_by=created_by,
                )
                row.latest_version = number
            row.updated_at = now
            row.deleted_at = None
            if description is not None:
                row.description = description
            if tags is not None:
                row.tags = list(tags)
            return SavedScript(row.record(), row.versions[row.latest_version], created)

    def restore_version(
        self, script_id: str, number: int, *, created_by: str | None = None
    ) -> SavedScript:
        old = self.get_version(script_id, number)
        return self.save_script(old.domain(), created_by=created_by)

    def _script(self, id_or_name: str, *, deleted: bool = False) -> ScriptRow:
        row = self._scripts.get(id_or_name) or next(
            (s for s in self._scripts.values() if s.name == id_or_name), None
        )
        if row is None or (row.deleted_at is not None and not deleted):
            raise NotFoundError(f"no script {id_or_name!r}")
        return row

    def get_script(self, id_or_name: str) -> ScriptRecord:
        with self._lock:
            return self._script(id_or_name).record()

    def list_scripts(
        self,
        *,
        tag: str | None = None,
        search: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Page[ScriptRecord]:
        with self._lock:
            rows = [s for s in self._scripts.values() if s.deleted_at is None]
            if search:
                needle = search.lower()
                rows = [
                    s for s in rows if needle in s.name.lower() or needle in s.description.lower()
                ]
            if tag:
                rows = [s for s in rows if tag in s.tags]
            records = [s.record() for s in sorted(rows, key=lambda s: s.name)]
        return Page(tuple(records[offset : offset + limit]), len(records), limit, offset)

    def get_version(self, script_id: str, number: int | None = None) -> VersionRecord:
        with self._lock:
            row = self._script(script_id, deleted=True)
            wanted = row.latest_version if number is None else number
            version = row.versions.get(wanted)
            if version is None:
                raise NotFoundError(f"script {row.name!r} has no version {wanted}")
            return version

    def list_versions(self, script_id: str) -> list[VersionRecord]:
        with self._lock:
            row = self._script(script_id)
            return [row.versions[n] for n in sorted(row.versions, reverse=True)]

    def delete_script(self, script_id: str) -> None:
        with self._tx():
            self._script(script_id).deleted_at = self.clock()

    def _host(self, id_or_name: str) -> HostRecord:
        rec = self._hosts.get(id_or_name) or next(
            (h for h in self._hosts.values() if h.name == id_or_name), None
        )
        if rec is None:
            raise NotFoundError(f"no host {id_or_name!r}")
        return rec

    def _host_named(self, name: str) -> HostRecord | None:
        return next((h for h in self._hosts.values() if h.name == name), None)

    def create_host(self, host: Host) -> HostRecord:
        with self._tx():
            host_id = host.id or new_id()
            if host_id in self._hosts or self._host_named(host.name) is not None:
                raise ConflictError(f"a host named {host.name!r} already exists")
            now = self.clock()
            rec = HostRecord(
                id=host_id,
                last_contact=None,
                created_at=now,
                updated_at=now,
                **_host_columns(host),
            )
            self._hosts[host_id] = rec
            return fresh_host(rec)

    def upsert_hosts(
        self,
        hosts: Sequence[Host],
        *,
        update_existing: bool = True,
        should_stop: Callable[[], bool] | None = None,
    ) -> tuple[list[str], list[str]]:
        """Create hosts by name, updating (or refusing) existing ones; all or nothing.

        ``should_stop`` is asked before each batch of ``IMPORT_BATCH`` hosts, as
        by the SQL store; a true answer keeps nothing and raises
        :class:`OperationCancelledError`.
        """
        created: list[str] = []
        updated: list[str] = []
        with self._tx():
            now = self.clock()
            by_name = {h.name: h.id for h in self._hosts.values()}
            staged: dict[str, HostRecord] = {}  # written only when every batch passed
            for start in range(0, len(hosts), IMPORT_BATCH):
                if should_stop is not None and should_stop():
                    raise OperationCancelledError(
                        f"the import stopped after {start} of {len(hosts)} hosts; "
                        "nothing was stored"
                    )
                for host in hosts[start : start + IMPORT_BATCH]:
                    columns = _host_columns(host)
                    if host.name in staged:
                        columns.pop("name")
                        staged[host.name] = dataclasses.replace(
                            staged[host.name], updated_at=now, **columns
                        )
                    elif host.name in by_name:
                        if not update_existing:
                            raise ConflictError(f"a host named {host.name!r} already exists")
                        columns.pop("name")
                        old = self._hosts[by_name[host.name]]
                        staged[host.name] = dataclasses.replace(old, updated_at=now, **columns)
                        updated.append(host.name)
                    else:
                        host_id = host.id or new_id()
                        if host_id in self._hosts:
                            raise ConflictError(f"a host with id {host_id!r} already exists")
                        staged[host.name] = HostRecord(
                            id=host_id,
                            last_contact=None,
                            created_at=now,
                            updated_at=now,
                            **columns,
                        )
                        created.append(host.name)
            for rec in staged.values():
                self._hosts[rec.id] = rec
        return created, updated

    def update_host(self, host_id: str, **changes: Any) -> HostRecord:
        unknown = set(changes) - _HOST_FIELDS
        if unknown:
            first = sorted(unknown)[0]
            raise ValidationError(f"unknown host field {first!r}", field=first)
        values: dict[str, Any] = {}
        for key, value in changes.items():
            if key in ("shells", "groups"):
                value = tuple(value)
            elif key in ("labels", "vars"):
                value = dict(value)
            elif key == "transport":
                value = TransportKind(value)
            values[key] = value
        with self._tx():
            rec = self._host(host_id)
            if "name" in values:
                other = self._host_named(values["name"])
                if other is not None and other.id != rec.id:
                    raise ConflictError(f"a host named {values['name']!r} already exists")
            new = dataclasses.replace(rec, updated_at=self.clock(), **values)
            self._hosts[rec.id] = new
            return fresh_host(new)

    def get_host(self, id_or_name: str) -> HostRecord:
        with self._lock:
            return fresh_host(self._host(id_or_name))

    def list_hosts(self) -> list[HostRecord]:
        with self._lock:
            return [fresh_host(h) for h in sorted(self._hosts.values(), key=lambda h: h.name)]

    def delete_host(self, host_id: str) -> None:
        """Runs that targeted the host keep its name; their ``host_id`` becomes None."""
        with self._tx():
            rec = self._host(host_id)
            del self._hosts[rec.id]
            for run in self._runs.values():
                if run.host_id == rec.id:
                    run.host_id = None

    def touch_host(self, host_id: str) -> None:
        with self._tx():
            rec = self._hosts.get(host_id)
            if rec is not None:
                self._hosts[host_id] = dataclasses.replace(rec, last_contact=self.clock())

    def fleet_facets(self) -> FleetFacets:
        with self._lock:
            hosts = sorted(self._hosts.values(), key=lambda h: h.name)
            groups = sorted({g for h in hosts for g in h.groups})
            labels = sorted({f"{k}={v}" for h in hosts for k, v in h.labels.items()})
            return FleetFacets(tuple(groups), tuple(labels), tuple(h.name for h in hosts))

    def host_page(
        self, *, search: str = "", group: str = "", limit: int = 200, offset: int = 0
    ) -> tuple[Page[HostRecord], int]:
        """Hosts by name matching ``search`` (name, address or a label; ``key=value``
        matches that label) and in ``group``; and the number of hosts stored."""
        needle = search.lower()
        key, eq, value = search.partition("=")
        label = json.dumps({key: value})[1:-1].lower() if eq else needle

        def matches(h: HostRecord) -> bool:
            if group and group not in h.groups:
                return False
            if not search:
                return True
            return (
                needle in h.name.lower()
                or needle in (h.address or "").lower()
                or label in json.dumps(dict(h.labels)).lower()
            )

        with self._lock:
            total = len(self._hosts)
            found = sorted((h for h in self._hosts.values() if matches(h)), key=lambda h: h.name)
            items = tuple(fresh_host(h) for h in found[offset : offset + limit])
        return Page(items, len(found), limit, offset), total

    def execution_header(self, execution_id: str) -> ExecutionRecord:
        with self._lock:
            return self._record(execution_id, with_runs=False)

    def grid_page(
        self,
        execution_id: str,
        *,
        states: Sequence[HostRunState] | None = None,
        hosts: Sequence[str] | None = None,
        limit: int = 500,
        offset: int = 0,
    ) -> Page[GridCell]:
        wanted = None if states is None else {S(s) for s in states}
        names = None if hosts is None else set(hosts)
        with self._lock:
            ex = self._executions.get(execution_id)
            runs = [self._runs[i] for i in ex.run_ids] if ex is not None else []
            runs = sorted(
                (
                    r
                    for r in runs
                    if not r.superseded
                    and (wanted is None or r.state in wanted)
                    and (names is None or r.host_name in names)
                ),
                key=lambda r: r.host_name,
            )
            cells = tuple(
                GridCell(r.id, r.host_name, r.state, r.exit_code, r.attempt)
                for r in runs[offset : offset + limit]
            )
        return Page(cells, len(runs), limit, offset)

    def run_digests(self, execution_id: str) -> list[RunDigest]:
        with self._lock:
            ex = self._executions.get(execution_id)
            runs = [self._runs[i] for i in ex.run_ids] if ex is not None else []
            return [
                RunDigest(
                    r.state,
                    r.exit_code,
                    r.reason,
                    None if r.message is None else r.message[:_DIGEST_CHARS],
                    r.stdout_tail[-_DIGEST_CHARS:],
                    r.stderr_tail[:_DIGEST_CHARS],
                    r.host_name,
                )
                for r in sorted(runs, key=lambda r: r.host_name)
                if not r.superseded
            ]

    def host_recent_runs(
        self, host_id: str, host_name: str, limit: int = 25
    ) -> list[tuple[HostRunRecord, str]]:
        with self._lock:
            runs = [
                r
                for r in self._runs.values()
                if not r.superseded and (r.host_id == host_id or r.host_name == host_name)
            ]
            runs.sort(key=lambda r: r.queued_at, reverse=True)
            return [
                (r.record(), self._executions[r.execution_id].description) for r in runs[:limit]
            ]

    def host_last_results(self, host_ids: Sequence[str]) -> dict[str, HostRunRecord]:
        wanted = set(host_ids)
        newest: dict[str, Any] = {}
        with self._lock:
            for r in self._runs.values():
                if (
                    r.host_id in wanted
                    and not r.superseded
                    and r.state in TERMINAL_STATES
                    and r.finished_at is not None
                ):
                    best = newest.get(r.host_id)
                    if best is None or (r.finished_at, r.id) > (best.finished_at, best.id):
                        newest[r.host_id] = r
            return {host_id: r.record() for host_id, r in newest.items()}

    def run_in_execution(self, execution_id: str, run_id: str) -> HostRunRecord:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None or run.execution_id != execution_id:
                raise NotFoundError(f"execution {execution_id} has no host run {run_id!r}")
            return run.record()

    def ping(self) -> bool:
        return True

    def read_counts(self) -> StoreCounts:
        with self._lock:
            now = self.clock()
            by_status: dict[str, int] = {}
            for ex in self._executions.values():
                by_status[ex.status.value] = by_status.get(ex.status.value, 0) + 1
            by_state: dict[str, int] = {}
            owners: set[str] = set()
            for r in self._runs.values():
                by_state[r.state.value] = by_state.get(r.state.value, 0) + 1
                live = r.lease_expires_at is not None and r.lease_expires_at > now
                if r.state is S.RUNNING and r.owner is not None and live:
                    owners.add(r.owner)
        return StoreCounts(
            executions_by_status=by_status,
            host_runs_by_state=by_state,
            queue_depth=by_state.get(S.QUEUED.value, 0),
            active_owners=len(owners),
        )
