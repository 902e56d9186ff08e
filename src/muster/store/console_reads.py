"""The web console's reads: compact rows the Store Protocol names under "console reads".

The console must stay responsive on an execution with thousands of hosts, so
it never loads every host run with its full tails: it reads one execution's
header (counters only), one page of compact grid cells, or one short row
per host for grouping. :class:`ConsoleReadOps` gives them to ``SqlStore`` as
methods, so the web layer holds a ``Store`` and never the engine.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, String, cast, func, or_, select

from muster.domain.states import TERMINAL_STATES, HostRunState
from muster.errors import NotFoundError
from muster.store._core import StoreCore
from muster.store._rows import execution_record, host_record, host_run_record
from muster.store.base import (
    ExecutionRecord,
    FleetFacets,
    GridCell,
    HostRecord,
    HostRunRecord,
    Page,
    RunDigest,
)
from muster.store.tables import executions, host_runs, hosts

__all__ = [
    "ConsoleReadOps",
    "FleetFacets",
    "GridCell",
    "RunDigest",
    "execution_header",
    "fleet_facets",
    "grid_page",
    "host_last_results",
    "host_page",
    "host_recent_runs",
    "run_digests",
    "run_in_execution",
]

#: Characters of a stdout tail compared when grouping identical results.
TAIL_CHARS = 200


def fleet_facets(engine: Engine) -> FleetFacets:
    """Read three small columns of every host, not whole records."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(hosts.c.name, hosts.c.groups, hosts.c.labels).order_by(hosts.c.name)
        ).all()
    groups = sorted({g for r in rows for g in (r.groups or ())})
    labels = sorted({f"{k}={v}" for r in rows for k, v in (r.labels or {}).items()})
    return FleetFacets(tuple(groups), tuple(labels), tuple(r.name for r in rows))


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def host_page(
    engine: Engine, *, search: str = "", group: str = "", limit: int = 200, offset: int = 0
) -> tuple[Page[HostRecord], int]:
    """Hosts by name matching ``search`` (name, address or a label) and in ``group``;
    returns the page and the number of hosts stored."""
    conds = []
    if search:
        pattern = _like(search)
        key, eq, value = search.partition("=")
        # A label is searched as its JSON text: key=value -> "key": "value".
        label = _like(f'"{key}": "{value}"') if eq else pattern
        conds.append(
            or_(
                func.lower(hosts.c.name).like(pattern, escape="\\"),
                func.lower(hosts.c.address).like(pattern, escape="\\"),
                func.lower(cast(hosts.c.labels, String)).like(label, escape="\\"),
            )
        )
    if group:
        # JSON text of the groups list holds the name quoted: match it whole.
        quoted = '"' + group.replace("\\", "\\\\").replace('"', '\\"') + '"'
        conds.append(cast(hosts.c.groups, String).contains(quoted, autoescape=True))
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(hosts)).scalar_one()
        matched = conn.execute(select(func.count()).select_from(hosts).where(*conds)).scalar_one()
        rows = conn.execute(
            select(hosts).where(*conds).order_by(hosts.c.name).limit(limit).offset(offset)
        ).mappings()
        items = tuple(host_record(r) for r in rows)
    return Page(items, int(matched), limit, offset), int(total)


def execution_header(engine: Engine, execution_id: str) -> ExecutionRecord:
    """The execution with its counters and no host runs (one row read)."""
    with engine.connect() as conn:
        row = (
            conn.execute(select(executions).where(executions.c.id == execution_id))
            .mappings()
            .first()
        )
    if row is None:
        raise NotFoundError(f"no execution {execution_id!r}")
    return execution_record(row)


def grid_page(
    engine: Engine,
    execution_id: str,
    *,
    states: Sequence[HostRunState] | None = None,
    hosts: Sequence[str] | None = None,
    limit: int = 500,
    offset: int = 0,
) -> Page[GridCell]:
    """Current (not superseded) host runs by host name, optionally only some states
    or hosts; ``total`` counts every match."""
    conds = [host_runs.c.execution_id == execution_id, host_runs.c.superseded.is_(False)]
    if states is not None:
        conds.append(host_runs.c.state.in_([s.value for s in states]))
    if hosts is not None:
        conds.append(host_runs.c.host_name.in_(list(hosts)))
    cols = (
        host_runs.c.id,
        host_runs.c.host_name,
        host_runs.c.state,
        host_runs.c.exit_code,
        host_runs.c.attempt,
    )
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(host_runs).where(*conds)).scalar_one()
        rows = conn.execute(
            select(*cols).where(*conds).order_by(host_runs.c.host_name).limit(limit).offset(offset)
        ).all()
    cells = tuple(
        GridCell(r.id, r.host_name, HostRunState(r.state), r.exit_code, r.attempt) for r in rows
    )
    return Page(cells, int(total), limit, offset)


def run_digests(engine: Engine, execution_id: str) -> list[RunDigest]:
    """One short row per current host run; tails are cut in SQL so a large
    execution moves at most ``2 * TAIL_CHARS`` characters of output per host."""
    if engine.dialect.name == "postgresql":
        out_end = func.right(host_runs.c.stdout_tail, TAIL_CHARS)
    else:
        out_end = func.substr(host_runs.c.stdout_tail, -TAIL_CHARS)
    err_start = func.substr(host_runs.c.stderr_tail, 1, TAIL_CHARS)
    stmt = select(
        host_runs.c.state,
        host_runs.c.exit_code,
        host_runs.c.reason,
        func.substr(host_runs.c.message, 1, TAIL_CHARS).label("message"),
        out_end.label("stdout_end"),
        err_start.label("stderr_start"),
        host_runs.c.host_name,
    ).where(host_runs.c.execution_id == execution_id, host_runs.c.superseded.is_(False))
    with engine.connect() as conn:
        rows = conn.execute(stmt.order_by(host_runs.c.host_name)).all()
    return [
        RunDigest(
            HostRunState(r.state),
            r.exit_code,
            r.reason,
            r.message,
            r.stdout_end or "",
            r.stderr_start or "",
            r.host_name,
        )
        for r in rows
    ]


def host_recent_runs(
    engine: Engine, host_id: str, host_name: str, limit: int = 25
) -> list[tuple[HostRunRecord, str]]:
    """A host's newest current host runs with their execution's description."""
    stmt = (
        select(host_runs, executions.c.description.label("execution_description"))
        .join(executions, executions.c.id == host_runs.c.execution_id)
        .where(
            (host_runs.c.host_id == host_id) | (host_runs.c.host_name == host_name),
            host_runs.c.superseded.is_(False),
        )
        .order_by(host_runs.c.queued_at.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).mappings().all()
    return [(host_run_record(r), r["execution_description"]) for r in rows]


def host_last_results(engine: Engine, host_ids: Sequence[str]) -> dict[str, HostRunRecord]:
    """Each host's newest finished current run, in one query (a window per host)."""
    if not host_ids:
        return {}
    terminal = [s.value for s in TERMINAL_STATES]
    newest = (
        func.row_number()
        .over(
            partition_by=host_runs.c.host_id,
            order_by=(host_runs.c.finished_at.desc(), host_runs.c.id.desc()),
        )
        .label("newest")
    )
    ranked = (
        select(host_runs, newest)
        .where(
            host_runs.c.host_id.in_(list(host_ids)),
            host_runs.c.state.in_(terminal),
            host_runs.c.finished_at.is_not(None),
            host_runs.c.superseded.is_(False),
        )
        .subquery()
    )
    with engine.connect() as conn:
        rows = conn.execute(select(ranked).where(ranked.c.newest == 1)).mappings().all()
    return {r["host_id"]: host_run_record(r) for r in rows}


def run_in_execution(engine: Engine, execution_id: str, run_id: str) -> HostRunRecord:
    """One host run, checked to belong to ``execution_id``."""
    with engine.connect() as conn:
        row = (
            conn.execute(
                select(host_runs).where(
                    host_runs.c.id == run_id, host_runs.c.execution_id == execution_id
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        raise NotFoundError(f"execution {execution_id} has no host run {run_id!r}")
    return host_run_record(row)


class ConsoleReadOps(StoreCore):
    """The reads above as store methods (see the Store Protocol's console reads)."""

    def fleet_facets(self) -> FleetFacets:
        return fleet_facets(self.engine)

    def host_page(
        self, *, search: str = "", group: str = "", limit: int = 200, offset: int = 0
    ) -> tuple[Page[HostRecord], int]:
        return host_page(self.engine, search=search, group=group, limit=limit, offset=offset)

    def execution_header(self, execution_id: str) -> ExecutionRecord:
        return execution_header(self.engine, execution_id)

    def grid_page(
        self,
        execution_id: str,
        *,
        states: Sequence[HostRunState] | None = None,
        hosts: Sequence[str] | None = None,
        limit: int = 500,
        offset: int = 0,
    ) -> Page[GridCell]:
        return grid_page(
            self.engine, execution_id, states=states, hosts=hosts, limit=limit, offset=offset
        )

    def run_digests(self, execution_id: str) -> list[RunDigest]:
        return run_digests(self.engine, execution_id)

    def host_recent_runs(
        self, host_id: str, host_name: str, limit: int = 25
    ) -> list[tuple[HostRunRecord, str]]:
        return host_recent_runs(self.engine, host_id, host_name, limit)

    def run_in_execution(self, execution_id: str, run_id: str) -> HostRunRecord:
        return run_in_execution(self.engine, execution_id, run_id)

    def host_last_results(self, host_ids: Sequence[str]) -> dict[str, HostRunRecord]:
        return host_last_results(self.engine, host_ids)
