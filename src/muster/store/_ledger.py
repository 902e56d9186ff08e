"""Compare-and-set state changes and the execution counters they move.

Every host-run state change goes through :func:`transition` (one
``UPDATE ... WHERE id AND state AND owner AND epoch``), and every change in
the set of current host-run states goes through :class:`Deltas`, which
updates the execution's per-state counters, and its status recomputed from
them, in one UPDATE of the transaction. So ``executions.status ==
rollup(current host run states)`` holds after every commit.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    RowMapping,
    Update,
    bindparam,
    case,
    func,
    literal,
    update,
)

from muster.domain.states import ExecutionStatus, HostRunState, check_transition
from muster.store.tables import STATE_COUNTERS, UTCDateTime, executions, host_runs

__all__ = [
    "ANY_OWNER",
    "Deltas",
    "counter_params",
    "counter_update",
    "counter_values",
    "status_case",
    "transition",
]

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


def status_case(n: Mapping[str, ColumnElement[int]]) -> ColumnElement[str]:
    """``rollup()`` as SQL over per-state counts (a test checks every combination).

    Used inside the counter UPDATE itself, over the new counts, so the stored
    status changes in the same statement as the counters it derives from.
    """
    total = sum((n[s] for s in STATE_COUNTERS[1:]), n[STATE_COUNTERS[0]])
    v = {s: literal(s.value) for s in ExecutionStatus}
    E = ExecutionStatus
    return case(
        (total == 0, v[E.SUCCEEDED]),
        (n["pending_approval"] > 0, v[E.PENDING_APPROVAL]),
        (n["running"] > 0, v[E.RUNNING]),
        (n["queued"] == total, v[E.QUEUED]),
        (n["queued"] > 0, v[E.RUNNING]),
        (n["skipped"] == total, v[E.SKIPPED]),
        (n["rejected"] == total, v[E.REJECTED]),
        (n["failed"] + n["lost"] + n["rejected"] > 0, v[E.FAILED]),
        (n["timed_out"] > 0, v[E.TIMED_OUT]),
        (n["cancelled"] > 0, v[E.CANCELLED]),
        else_=v[E.SUCCEEDED],
    )


_TERMINAL_STATUSES = tuple(s.value for s in ExecutionStatus if s.terminal)


@functools.cache
def counter_values(states: tuple[str, ...]) -> dict[str, Any]:
    """SET clauses moving the counters of ``states`` by ``:d_<state>`` and recomputing
    status and finished_at (``:p_now``). Cached: building the CASE costs milliseconds."""
    new = {
        s: executions.c[f"n_{s}"] + bindparam(f"d_{s}", type_=Integer())
        if s in states
        else executions.c[f"n_{s}"]
        for s in STATE_COUNTERS
    }
    status = status_case(new)
    now = bindparam("p_now", type_=UTCDateTime())
    values: dict[str, Any] = {f"n_{s}": new[s] for s in states}
    values["status"] = status
    values["finished_at"] = case(
        (status.in_(_TERMINAL_STATUSES), func.coalesce(executions.c.finished_at, now)), else_=None
    )
    return values


@functools.cache
def counter_update(states: tuple[str, ...]) -> Update:
    """UPDATE of execution ``:p_eid``; see :func:`counter_values`."""
    return (
        update(executions)
        .where(executions.c.id == bindparam("p_eid"))
        .values(counter_values(states))
    )


def counter_params(moves: Mapping[str, int], now: dt.datetime) -> dict[str, Any]:
    return {"p_now": now, **{f"d_{s}": n for s, n in moves.items()}}


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
            if moves:
                conn.execute(
                    counter_update(tuple(sorted(moves))),
                    {"p_eid": execution_id, **counter_params(moves, now)},
                )
        self._d.clear()
