"""Compare-and-set state changes and the execution counters they move.

Every host-run state change goes through :func:`transition` (one
``UPDATE ... WHERE id AND state AND owner AND epoch``), and every change in
the set of current host-run states goes through :class:`Deltas`, which
updates the execution's per-state counters and its cached status in the same
transaction. So ``executions.status == rollup(current host run states)``
holds after every commit.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, RowMapping, update

from muster.domain.states import HostRunState, check_transition, rollup
from muster.store._rows import counts_of
from muster.store.tables import STATE_COUNTERS, executions, host_runs

__all__ = ["ANY_OWNER", "Deltas", "transition"]

#: Sentinel: the compare-and-set does not look at the owner.
ANY_OWNER = object()


def transition(
    conn: Connection,
    run_id: str,
    old: HostRunState,
    new: HostRunState,
    *,
    owner: object = ANY_OWNER,
    epoch: int | None = None,
    where: Sequence[ColumnElement[bool]] = (),
    values: dict[str, Any] | None = None,
) -> RowMapping | None:
    """Move one host run ``old -> new`` if it is still as expected; the row if won.

    Raises StateTransitionError for an illegal move (a programming error or a
    request the caller should have refused), before touching the database.
    """
    check_transition(old, new)
    conds = [host_runs.c.id == run_id, host_runs.c.state == old.value, *where]
    if owner is not ANY_OWNER:
        conds.append(host_runs.c.owner == owner)
    if epoch is not None:
        conds.append(host_runs.c.epoch == epoch)
    stmt = (
        update(host_runs)
        .where(*conds)
        .values(state=new.value, **(values or {}))
        .returning(host_runs)
    )
    return conn.execute(stmt).mappings().first()


class Deltas:
    """Counter moves per execution, applied at the end of a transaction."""

    __slots__ = ("_d",)

    def __init__(self) -> None:
        self._d: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def move(self, execution_id: str, old: HostRunState, new: HostRunState, n: int = 1) -> None:
        self._d[execution_id][old.value] -= n
        self._d[execution_id][new.value] += n

    def add(self, execution_id: str, state: HostRunState, n: int = 1) -> None:
        self._d[execution_id][state.value] += n

    def remove(self, execution_id: str, state: HostRunState, n: int = 1) -> None:
        self._d[execution_id][state.value] -= n

    def apply(self, conn: Connection, now: dt.datetime) -> None:
        for execution_id in sorted(self._d):  # a fixed order: no lock-order deadlocks
            moves = {s: n for s, n in self._d[execution_id].items() if n}
            if not moves:
                continue
            counter_cols = [executions.c[f"n_{s}"] for s in STATE_COUNTERS]
            row = (
                conn.execute(
                    update(executions)
                    .where(executions.c.id == execution_id)
                    .values({f"n_{s}": executions.c[f"n_{s}"] + n for s, n in moves.items()})
                    .returning(*counter_cols, executions.c.status)
                )
                .mappings()
                .one()
            )
            counts = counts_of(row)
            status = rollup(HostRunState(s) for s, n in counts.items() if n > 0)
            if status.value != row["status"]:
                conn.execute(
                    update(executions)
                    .where(executions.c.id == execution_id)
                    .values(status=status.value, finished_at=now if status.terminal else None)
                )
        self._d.clear()
