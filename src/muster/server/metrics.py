"""``/metrics`` in the Prometheus text format, from the store's counts.

The counting itself is the store's (:meth:`~muster.store.base.Store.read_counts`);
this module only renders, so it knows no SQL.
"""

from __future__ import annotations

from muster.store.base import StoreCounts

__all__ = ["render_prometheus"]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_prometheus(
    counts: StoreCounts,
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
