"""The execution view's batched state: counts, progress, result groups and one grid page.

One request returns everything the page needs to redraw, whatever the number
of hosts, so live updates cost one small query set per poll and never one
request per host. Result groups are cached per execution and recomputed only
when its state counters change (the output of a finished host never changes).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from muster.domain.states import TERMINAL_STATES, HostRunState
from muster.server.web.grouping import ResultGroup, group_results
from muster.store.base import ExecutionRecord, Store

__all__ = ["FILTERS", "RERUN", "GroupCache", "summary"]

S = HostRunState
#: Grid filters offered by the view; each is a set of host-run states.
FILTERS: dict[str, tuple[HostRunState, ...]] = {
    "failed": (S.FAILED, S.TIMED_OUT, S.LOST, S.REJECTED),
    "running": (S.RUNNING, S.QUEUED, S.PENDING_APPROVAL),
    "succeeded": (S.SUCCEEDED,),
}
#: Not a state filter: the hosts a "Re-run failed hosts" queued again (attempt > 1),
#: whatever they are doing by the time the page shows them.
RERUN = "rerun"
PAGE_SIZE = 500
#: How many host runs the re-run filter looks at.
_RERUN_SCAN = 20_000
_CACHED = 64


@dataclass(frozen=True, slots=True)
class _Grouped:
    counts: tuple[tuple[str, int], ...]
    groups: list[ResultGroup]
    members: dict[str, list[str]]


class GroupCache:
    """Recent executions' result groups, keyed by their state counters (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[str, _Grouped] = OrderedDict()

    def get(self, store: Store, record: ExecutionRecord) -> _Grouped:
        counts = tuple(sorted(record.counts.items()))
        with self._lock:
            found = self._items.get(record.id)
            if found is not None and found.counts == counts:
                self._items.move_to_end(record.id)
                return found
        groups = group_results(store.run_digests(record.id))
        grouped = _Grouped(counts, groups, {g.key: g.hosts for g in groups})
        with self._lock:
            self._items[record.id] = grouped
            while len(self._items) > _CACHED:
                self._items.popitem(last=False)
        return grouped


def _cancelling(store: Store, record: ExecutionRecord, counts: dict[str, int]) -> bool:
    """Whether a cancel is under way: nothing waits any more, some host was cancelled,
    and a running host has been asked to stop (one host is enough to look at: a
    cancel asks every running host at once)."""
    if (
        record.status.terminal
        or not counts.get(S.CANCELLED.value)
        or not counts.get(S.RUNNING.value)
    ):
        return False
    if counts.get(S.QUEUED.value) or counts.get(S.PENDING_APPROVAL.value):
        return False
    running = store.grid_page(record.id, states=(S.RUNNING,), limit=1)
    return bool(running.items) and store.get_host_run(running.items[0].run_id).cancel_requested


def summary(
    store: Store,
    cache: GroupCache,
    execution_id: str,
    *,
    filter_name: str = "",
    group: str = "",
    offset: int = 0,
    limit: int = PAGE_SIZE,
) -> dict[str, Any]:
    record = store.execution_header(execution_id)
    grouped = cache.get(store, record)
    counts = {k: v for k, v in record.counts.items() if v}
    total = sum(counts.values())
    done = sum(n for s, n in counts.items() if S(s) in TERMINAL_STATES)
    hosts = grouped.members.get(group) if group else None
    if filter_name == RERUN:
        every = store.grid_page(execution_id, limit=_RERUN_SCAN).items
        hosts = [c.host_name for c in every if c.attempt > 1]
    page = store.grid_page(
        execution_id,
        states=FILTERS.get(filter_name),
        hosts=hosts,
        limit=limit,
        offset=offset,
    )
    return {
        "id": record.id,
        "status": record.status.value,
        # What the page shows: "cancelling" from the moment a cancel is asked for
        # until the killed hosts have ended.
        "shown": "cancelling" if _cancelling(store, record, counts) else record.status.value,
        "terminal": record.status.terminal,
        "finished_at": record.finished_at.isoformat() if record.finished_at else None,
        "counts": counts,
        "total": total,
        "done": done,
        "progress": round(100 * done / total) if total else 100,
        "groups": [g.as_json() for g in grouped.groups],
        "grid": {
            "cells": [[c.run_id, c.host_name, c.state.value, c.exit_code] for c in page.items],
            "total": page.total,
            "offset": page.offset,
            "limit": page.limit,
        },
        "filter": filter_name,
        "group": group,
    }
