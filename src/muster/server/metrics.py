"""Aggregate counts for ``/metrics`` and ``/health``, read straight from the store's tables.

Read-only queries beside the store (which has no counting operations yet);
each is one ``GROUP BY`` over an indexed column.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from sqlalchemy import Engine, func, select, text

from muster.store.tables import executions, host_runs

__all__ = ["Counts", "database_ok", "read_counts", "render_prometheus"]


class Counts:
    def __init__(
        self,
        executions_by_status: Mapping[str, int],
        host_runs_by_state: Mapping[str, int],
        queue_depth: int,
        active_owners: int,
    ) -> None:
        self.executions_by_status = executions_by_status
        self.host_runs_by_state = host_runs_by_state
        self.queue_depth = queue_depth
        self.active_owners = active_owners


def database_ok(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def read_counts(engine: Engine) -> Counts:
    now = dt.datetime.now(dt.UTC)
    with engine.connect() as conn:
        by_status = {
            str(s): int(n)
            for s, n in conn.execute(
                select(executions.c.status, func.count()).group_by(executions.c.status)
            )
        }
        by_state = {
            str(s): int(n)
            for s, n in conn.execute(
                select(host_runs.c.state, func.count()).group_by(host_runs.c.state)
            )
        }
        owners = conn.execute(
            select(func.count(func.distinct(host_runs.c.owner))).where(
                host_runs.c.state == "running", host_runs.c.lease_expires_at > now
            )
        ).scalar_one()
    return Counts(by_status, by_state, by_state.get("queued", 0), int(owners or 0))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_prometheus(
    counts: Counts,
    *,
    statuses: tuple[str, ...],
    states: tuple[str, ...],
    workers: int,
    draining: bool,
    uptime: float,
) -> str:
    """Prometheus text exposition format 0.0.4; every known label value is present."""
    out: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")

    family("muster_executions", "gauge", "Executions by rolled-up status.")
    for s in statuses:
        out.append(
            f'muster_executions{{status="{_escape(s)}"}} {counts.executions_by_status.get(s, 0)}'
        )
    family("muster_host_runs", "gauge", "Host runs by state.")
    for s in states:
        out.append(
            f'muster_host_runs{{state="{_escape(s)}"}} {counts.host_runs_by_state.get(s, 0)}'
        )
    family("muster_queue_depth", "gauge", "Host runs queued and waiting for a worker.")
    out.append(f"muster_queue_depth {counts.queue_depth}")
    family("muster_workers", "gauge", "Workers embedded in this server process.")
    out.append(f"muster_workers {workers}")
    family("muster_active_lease_owners", "gauge", "Distinct workers holding a live lease.")
    out.append(f"muster_active_lease_owners {counts.active_owners}")
    family("muster_worker_draining", "gauge", "1 when this server's worker claims no new work.")
    out.append(f"muster_worker_draining {int(draining)}")
    family("muster_uptime_seconds", "gauge", "Seconds since this server started.")
    out.append(f"muster_uptime_seconds {uptime:.3f}")
    return "\n".join(out) + "\n"
