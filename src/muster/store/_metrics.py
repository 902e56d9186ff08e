"""The operations endpoints' reads: the ``/health`` probe and the ``/metrics`` counts.

Kept in the store so the server never holds the engine or writes SQL; each
count is one ``GROUP BY`` over an indexed column, whatever the history size.
"""

from __future__ import annotations

from sqlalchemy import func, select, text

from muster.domain.states import HostRunState
from muster.store._core import StoreCore
from muster.store.base import StoreCounts
from muster.store.tables import executions, host_runs

__all__ = ["MetricsOps"]


class MetricsOps(StoreCore):
    def ping(self) -> bool:
        """Whether the database answers now; never raises, so health can say "unavailable"."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def read_counts(self) -> StoreCounts:
        now = self.clock()
        with self.engine.connect() as conn:
            by_status = {
                str(status): int(n)
                for status, n in conn.execute(
                    select(executions.c.status, func.count()).group_by(executions.c.status)
                )
            }
            by_state = {
                str(state): int(n)
                for state, n in conn.execute(
                    select(host_runs.c.state, func.count()).group_by(host_runs.c.state)
                )
            }
            owners = conn.execute(
                select(func.count(func.distinct(host_runs.c.owner))).where(
                    host_runs.c.state == HostRunState.RUNNING.value,
                    host_runs.c.lease_expires_at > now,
                )
            ).scalar_one()
        return StoreCounts(
            executions_by_status=by_status,
            host_runs_by_state=by_state,
            queue_depth=by_state.get(HostRunState.QUEUED.value, 0),
            active_owners=int(owners or 0),
        )
