"""Maintenance windows over SQLAlchemy (see :mod:`muster.store.windows` for the contract).

The claim calls :func:`gate_claimed` inside its own transaction
with the rows it just took: runs outside their window are put straight back
(``queued``, ``available_at`` = next opening, the reason), so no other
worker ever sees them claimed, and each kept run under a bounded window gets
a hold. Reading the (small) windows table once per claim is the whole cost
when there are windows; with none, the claim is what it was.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, delete, insert, select, update

from muster.domain.states import HostRunState
from muster.domain.throttle import groups_of_key
from muster.domain.windows import (
    ClosePolicy,
    MaintenanceWindow,
    WindowGate,
    WindowKind,
    WindowScope,
)
from muster.errors import NotFoundError
from muster.store._core import StoreCore, new_id
from muster.store._ledger import Deltas, transition
from muster.store.notify import QUEUE_KEY, execution_key
from muster.store.tables import host_runs
from muster.store.window_tables import maintenance_windows, window_holds, window_overrides
from muster.store.windows import DEFERRED_PREFIX, WindowSweep, stop_message

__all__ = ["WindowOps", "gate_claimed", "unclaim", "window_row", "window_values"]

S = HostRunState
_mw = maintenance_windows


def window_values(w: MaintenanceWindow) -> dict[str, Any]:
    """A window as column values (also the in-memory store's stored form)."""
    return {
        "name": w.name,
        "kind": w.kind.value,
        "scope": w.scope.value,
        "target": w.target,
        "timezone": w.timezone,
        "days": ",".join(str(d) for d in sorted(w.days)) if w.days else None,
        "start_time": f"{w.start_time:%H:%M}" if w.start_time else None,
        "end_time": f"{w.end_time:%H:%M}" if w.end_time else None,
        "starts_at": w.starts_at.astimezone(dt.UTC) if w.starts_at else None,
        "ends_at": w.ends_at.astimezone(dt.UTC) if w.ends_at else None,
        "close_policy": w.close_policy.value,
    }


def window_row(r: RowMapping | dict[str, Any]) -> MaintenanceWindow:
    def t(text: str | None) -> dt.time | None:
        return dt.time.fromisoformat(text) if text else None

    return MaintenanceWindow(
        id=r["id"],
        name=r["name"],
        kind=WindowKind(r["kind"]),
        scope=WindowScope(r["scope"]),
        target=r["target"],
        timezone=r["timezone"],
        days=frozenset(int(d) for d in r["days"].split(",")) if r["days"] else frozenset(),
        start_time=t(r["start_time"]),
        end_time=t(r["end_time"]),
        starts_at=r["starts_at"],
        ends_at=r["ends_at"],
        close_policy=ClosePolicy(r["close_policy"]),
    )


def gate_claimed(conn: Connection, now: dt.datetime, rows: list[Any]) -> tuple[list[Any], int]:
    """Keep the claimed rows whose window is open; put the others back. (kept, deferred)"""
    windows = _windows(conn)
    if not windows or not rows:
        return rows, 0
    gate = WindowGate(windows, now)
    exec_ids = sorted({r["execution_id"] for r in rows})
    overridden = set(
        conn.execute(
            select(window_overrides.c.execution_id).where(
                window_overrides.c.execution_id.in_(exec_ids)
            )
        ).scalars()
    )
    kept: list[Any] = []
    back: list[dict[str, Any]] = []
    holds: list[dict[str, Any]] = []
    for r in rows:
        if r["execution_id"] in overridden:
            kept.append(r)
            continue
        d = gate.decide(r["host_name"], groups_of_key(r["group_key"]))
        if not d.open:
            back.append({"p_id": r["id"], "p_at": d.available_at, "p_why": d.reason})
            continue
        kept.append(r)
        if d.closes_at is not None:
            holds.append(
                {
                    "run_id": r["id"],
                    "epoch": r["epoch"],
                    "closes_at": d.closes_at,
                    "stop": d.stop_at_close,
                    "window": d.window,
                    "done": False,
                    "stop_reason": None,
                }
            )
    if back:
        conn.execute(
            update(host_runs)
            .where(host_runs.c.id == bindparam("p_id"), host_runs.c.state == S.RUNNING.value)
            .values(
                state=S.QUEUED.value,
                owner=None,
                claimed_at=None,
                lease_expires_at=None,
                available_at=bindparam("p_at"),
                waiting_reason=bindparam("p_why"),
            ),
            back,
        )
    if holds:
        conn.execute(
            delete(window_holds).where(window_holds.c.run_id.in_([h["run_id"] for h in holds]))
        )
        conn.execute(insert(window_holds), holds)
    return kept, len(back)


def unclaim(conn: Connection, rows: Sequence[Any]) -> None:
    """Put runs a gate round took beyond its batch back in the queue, as they were."""
    if rows:
        conn.execute(
            update(host_runs)
            .where(
                host_runs.c.id.in_([r["id"] for r in rows]), host_runs.c.state == S.RUNNING.value
            )
            .values(state=S.QUEUED.value, owner=None, claimed_at=None, lease_expires_at=None)
        )
        conn.execute(delete(window_holds).where(window_holds.c.run_id.in_([r["id"] for r in rows])))


#: Parsed windows by their stored row: a claim reads the table every time, but
#: parses (zones, validation) only rows it has not seen. Bounded: cleared when full.
_PARSED: dict[tuple[Any, ...], MaintenanceWindow] = {}
_PARSED_MAX = 4096


def _windows(conn: Connection) -> list[MaintenanceWindow]:
    rows = conn.execute(select(_mw).order_by(_mw.c.created_at, _mw.c.name, _mw.c.id)).mappings()
    out: list[MaintenanceWindow] = []
    for r in rows:
        key = tuple(r.values())
        w = _PARSED.get(key)
        if w is None:
            if len(_PARSED) >= _PARSED_MAX:
                _PARSED.clear()
            w = _PARSED[key] = window_row(r)
        out.append(w)
    return out


class WindowOps(StoreCore):
    """:class:`~muster.store.windows.WindowStore` over SQLAlchemy, and the claim's gate."""

    def create_window(
        self, window: MaintenanceWindow, *, created_by: str | None = None
    ) -> MaintenanceWindow:
        wid = new_id()
        with self._tx(notify=(QUEUE_KEY,)) as tx:
            tx.conn.execute(
                insert(_mw).values(
                    id=wid, created_by=created_by, created_at=self.clock(), **window_values(window)
                )
            )
            self._recheck_deferred(tx.conn)
        return self.get_window(wid)

    def list_windows(self) -> list[MaintenanceWindow]:
        with self._read() as conn:
            return _windows(conn)

    def get_window(self, window_id: str) -> MaintenanceWindow:
        with self._read() as conn:
            row = conn.execute(select(_mw).where(_mw.c.id == window_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"no maintenance window {window_id}")
        return window_row(row)

    def delete_window(self, window_id: str) -> None:
        with self._tx(notify=(QUEUE_KEY,)) as tx:
            if not tx.conn.execute(delete(_mw).where(_mw.c.id == window_id)).rowcount:
                raise NotFoundError(f"no maintenance window {window_id}")
            self._recheck_deferred(tx.conn)

    def _recheck_deferred(self, conn: Connection) -> None:
        """Windows changed: runs waiting for one are looked at again by the next claim."""
        conn.execute(
            update(host_runs)
            .where(
                host_runs.c.state == S.QUEUED.value,
                host_runs.c.waiting_reason.startswith(DEFERRED_PREFIX, autoescape=True),
            )
            .values(available_at=self.clock())
        )

    def override_windows(self, execution_id: str, by: str | None = None) -> int:
        now = self.clock()
        with self._tx(notify=(QUEUE_KEY, execution_key(execution_id))) as tx:
            conn = tx.conn
            if not conn.execute(
                select(window_overrides.c.execution_id).where(
                    window_overrides.c.execution_id == execution_id
                )
            ).first():
                conn.execute(
                    insert(window_overrides).values(execution_id=execution_id, by=by, at=now)
                )
            released = conn.execute(
                update(host_runs)
                .where(
                    host_runs.c.execution_id == execution_id,
                    host_runs.c.state == S.QUEUED.value,
                    host_runs.c.waiting_reason.startswith(DEFERRED_PREFIX, autoescape=True),
                )
                .values(
                    available_at=now,
                    waiting_reason="maintenance window overridden; waiting for a free worker",
                )
            ).rowcount
        return int(released or 0)

    def windows_overridden(self, execution_id: str) -> bool:
        with self._read() as conn:
            return (
                conn.execute(
                    select(window_overrides.c.execution_id).where(
                        window_overrides.c.execution_id == execution_id
                    )
                ).first()
                is not None
            )

    def stop_reasons(self, run_ids: Sequence[str]) -> dict[str, str]:
        if not run_ids:
            return {}
        with self._read() as conn:
            rows = conn.execute(
                select(window_holds.c.run_id, window_holds.c.stop_reason).where(
                    window_holds.c.run_id.in_(list(run_ids)),
                    window_holds.c.stop_reason.is_not(None),
                )
            ).all()
        return {run_id: reason for run_id, reason in rows}

    # -- the sweep at closes ------------------------------------------------

    def sweep_windows(self, now: dt.datetime | None = None) -> WindowSweep:
        now = now or self.clock()
        deferred: list[str] = []
        stopping: list[str] = []
        with self._tx(notify=(QUEUE_KEY,)) as tx:
            conn = tx.conn
            due = (
                conn.execute(
                    select(
                        window_holds.c.run_id,
                        window_holds.c.epoch,
                        window_holds.c.closes_at,
                        window_holds.c.stop,
                        window_holds.c.window,
                        host_runs.c.state,
                        host_runs.c.started_at,
                        host_runs.c.execution_id,
                        host_runs.c.host_name,
                        host_runs.c.group_key,
                        host_runs.c.epoch.label("run_epoch"),
                    )
                    .join(host_runs, host_runs.c.id == window_holds.c.run_id)
                    .where(window_holds.c.done.is_(False), window_holds.c.closes_at <= now)
                    .limit(500)
                )
                .mappings()
                .all()
            )
            if not due:
                return WindowSweep()
            gate = WindowGate(_windows(conn), now)
            deltas = Deltas()
            for h in due:
                live = h["state"] == S.RUNNING.value and h["run_epoch"] == h["epoch"]
                reason = None
                if live and h["started_at"] is None:
                    d = gate.decide(h["host_name"], groups_of_key(h["group_key"]))
                    row = (
                        None
                        if d.open
                        else transition(
                            conn,
                            h["run_id"],
                            S.RUNNING,
                            S.QUEUED,
                            epoch=h["epoch"],
                            where=[host_runs.c.started_at.is_(None)],
                            values={
                                "owner": None,
                                "epoch": host_runs.c.epoch + 1,
                                "claimed_at": None,
                                "lease_expires_at": None,
                                "available_at": d.available_at,
                                "waiting_reason": d.reason,
                            },
                        )
                    )
                    if row is not None:
                        deferred.append(h["run_id"])
                        deltas.move(h["execution_id"], S.RUNNING, S.QUEUED)
                        tx.notify(execution_key(h["execution_id"]))
                elif live and h["stop"]:
                    reason = stop_message(h["window"], h["closes_at"])
                    conn.execute(
                        update(host_runs)
                        .where(
                            host_runs.c.id == h["run_id"],
                            host_runs.c.state == S.RUNNING.value,
                            host_runs.c.epoch == h["epoch"],
                        )
                        .values(cancel_requested=True)
                    )
                    stopping.append(h["run_id"])
                    tx.notify(execution_key(h["execution_id"]))
                conn.execute(
                    update(window_holds)
                    .where(window_holds.c.run_id == h["run_id"])
                    .values(done=True, stop_reason=reason)
                )
            deltas.apply(conn, now)
        return WindowSweep(tuple(deferred), tuple(stopping))
