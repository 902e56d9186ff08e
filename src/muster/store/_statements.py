"""The queue's hot statements, built once with bind parameters.

Building a SQLAlchemy statement (above all the status CASE) costs far more
than running it; these are built once per shape and reused, so a finished
run costs the database work and little else.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import (
    CTE,
    Boolean,
    Integer,
    Select,
    String,
    Update,
    bindparam,
    func,
    literal,
    select,
    update,
)

from muster.domain.states import HostRunState
from muster.store._ledger import counter_values
from muster.store.notify import CHANNEL
from muster.store.tables import UTCDateTime, executions, host_runs, hosts

__all__ = ["claim_stmt", "finish_pg_stmt", "finish_stmt", "touch_hosts_stmt"]

S = HostRunState


@functools.cache
def claim_stmt() -> Update:
    """Claim ``:p_limit`` unthrottled queued runs by priority then time (SKIP LOCKED on PostgreSQL).

    Runs of executions with limits are left to ``QueueOps._claim_throttled``.
    """
    now = bindparam("p_now", type_=UTCDateTime())
    pick = (
        select(host_runs.c.id)
        .where(
            host_runs.c.state == S.QUEUED.value,
            host_runs.c.available_at <= now,
            host_runs.c.throttled.is_(False),
        )
        .order_by(host_runs.c.priority.desc(), host_runs.c.queued_at, host_runs.c.id)
        .limit(bindparam("p_limit", type_=Integer()))
        .with_for_update(skip_locked=True)
    )
    return (
        update(host_runs)
        .where(host_runs.c.id.in_(pick.scalar_subquery()))
        .values(
            state=S.RUNNING.value,
            owner=bindparam("p_owner", type_=String()),
            epoch=host_runs.c.epoch + 1,
            claimed_at=now,
            lease_expires_at=bindparam("p_lease", type_=UTCDateTime()),
            waiting_reason=None,
        )
        .returning(host_runs)
    )


@functools.cache
def finish_stmt(new: HostRunState) -> Update:
    """CAS ``running -> new`` on (owner, epoch); RETURNING the execution and host ids."""
    return (
        update(host_runs)
        .where(
            host_runs.c.id == bindparam("p_id"),
            host_runs.c.state == S.RUNNING.value,
            host_runs.c.owner == bindparam("p_owner"),
            host_runs.c.epoch == bindparam("p_epoch"),
        )
        .values(
            state=new.value,
            finished_at=bindparam("p_now", type_=UTCDateTime()),
            exit_code=bindparam("p_exit", type_=Integer()),
            reason=bindparam("p_reason", type_=String()),
            message=bindparam("p_message", type_=String()),
            lease_expires_at=None,
            events=host_runs.c.events + bindparam("p_events", type_=Integer()),
        )
        .returning(host_runs.c.execution_id, host_runs.c.host_id)
    )


@functools.cache
def touch_hosts_stmt() -> Update:
    """Record contact (``last_contact = :p_now``) on the hosts with ids in ``:p_ids``."""
    return (
        update(hosts)
        .where(hosts.c.id.in_(bindparam("p_ids", expanding=True)))
        .values(last_contact=bindparam("p_now", type_=UTCDateTime()))
    )


@functools.cache
def finish_pg_stmt(new: HostRunState) -> Select[Any]:
    """One PostgreSQL statement: the CAS, the execution's counters and status, the
    host's ``last_contact`` when ``:p_contact`` (the host answered), the NOTIFY."""
    run: CTE = finish_stmt(new).cte("run")
    touched: CTE = (
        update(hosts)
        .where(
            hosts.c.id == select(run.c.host_id).scalar_subquery(),
            bindparam("p_contact", type_=Boolean()),
        )
        .values(last_contact=bindparam("p_now", type_=UTCDateTime()))
        .returning(hosts.c.id)
        .cte("touched")
    )
    states = tuple(sorted({S.RUNNING.value, new.value}))
    counters: CTE = (
        update(executions)
        .where(executions.c.id == run.c.execution_id)
        .values(counter_values(states))
        .returning(executions.c.id)
        .cte("counters")
    )
    # A data-modifying CTE runs whether or not the query reads it; add_cte renders it.
    return select(
        counters.c.id, func.pg_notify(CHANNEL, literal("execution:") + counters.c.id)
    ).add_cte(touched)
