"""In-process runs keep maintenance windows too (the library and ``muster run``).

The dispatcher asks the same gate as the server's claim before each host
starts: ``wait`` holds a host until its window opens, ``fail`` fails it at
once naming the opening, ``ignore`` runs it; a host started under a
``stop`` window is cancelled at the close with the window's reason.
Windows here are real and a second or two long (the engine sleeps on the
wall clock); FakeClock drives the ``fail`` case, which never sleeps.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from muster.domain.executions import Execution
from muster.domain.hosts import Host, TransportKind
from muster.domain.plans import Plan
from muster.domain.states import FailureReason, HostRunState
from muster.domain.windows import ClosePolicy, MaintenanceWindow, WindowKind, WindowScope
from muster.engine.dispatcher import Dispatcher, DispatchPolicy
from muster.engine.windows import WindowMode, WindowRule
from muster.testing import FakeClock, ScriptedRun, ScriptedTransport

PLAN = Plan.command("true")
S = HostRunState


def _extra(start: dt.datetime, end: dt.datetime, **kw: object) -> MaintenanceWindow:
    return MaintenanceWindow(
        name="w",
        kind=WindowKind.EXTRA,
        scope=WindowScope.GROUP,
        target="db",
        starts_at=start,
        ends_at=end,
        **kw,  # type: ignore[arg-type]
    )


async def _run(hosts: list[Host], transport: ScriptedTransport, rule: WindowRule) -> Execution:
    execution = Execution.create(id="e", description="t", hosts=hosts)
    dispatcher = Dispatcher({TransportKind.SSH: transport}, DispatchPolicy(forks=4), None, rule)
    return await dispatcher.run(execution, lambda _h: PLAN, hosts)


HOSTS = [Host("db1", groups=("db",)), Host("web1", groups=("web",))]


async def test_fail_mode_fails_hosts_outside_their_window_naming_the_opening() -> None:
    clock = FakeClock(dt.datetime(2030, 1, 1, 12, tzinfo=dt.UTC))
    w = _extra(dt.datetime(2030, 1, 2, 1, tzinfo=dt.UTC), dt.datetime(2030, 1, 2, 3, tzinfo=dt.UTC))
    transport = ScriptedTransport()
    ex = await _run(HOSTS, transport, WindowRule((w,), WindowMode.FAIL, clock))
    assert transport.started == ["web1"]  # no window covers web1
    db = ex.host_runs["db1"]
    assert db.state is S.FAILED and db.reason is FailureReason.OUTSIDE_WINDOW
    assert db.message == "outside maintenance window; next opens Wed 01:00 UTC"


async def test_ignore_mode_runs_everything() -> None:
    clock = FakeClock(dt.datetime(2030, 1, 1, 12, tzinfo=dt.UTC))
    w = _extra(dt.datetime(2030, 1, 2, 1, tzinfo=dt.UTC), dt.datetime(2030, 1, 2, 3, tzinfo=dt.UTC))
    transport = ScriptedTransport()
    await _run(HOSTS, transport, WindowRule((w,), WindowMode.IGNORE, clock))
    assert sorted(transport.started) == ["db1", "web1"]


async def test_wait_mode_holds_a_host_until_its_window_opens() -> None:
    now = dt.datetime.now(dt.UTC)
    opens = now + dt.timedelta(seconds=1.5)
    w = _extra(opens, opens + dt.timedelta(minutes=5))
    heard: list[tuple[str, str, dt.datetime]] = []
    transport = ScriptedTransport()
    rule = WindowRule((w,), WindowMode.WAIT, on_wait=lambda *a: heard.append(a))
    ex = await _run(HOSTS, transport, rule)
    assert transport.started[0] == "web1"
    assert ex.host_runs["db1"].state is S.SUCCEEDED
    assert ex.host_runs["db1"].started_at >= opens
    assert [(h, when) for h, _, when in heard] == [("db1", opens)]
    assert heard[0][1].startswith("outside maintenance window; next opens ")


async def test_stop_window_cancels_a_running_host_at_its_close() -> None:
    now = dt.datetime.now(dt.UTC)
    closes = now + dt.timedelta(seconds=1)
    w = _extra(now - dt.timedelta(minutes=1), closes, close_policy=ClosePolicy.STOP)
    never = asyncio.Event()
    transport = ScriptedTransport(
        lambda h, _p: ScriptedRun(gate=never) if h.name == "db1" else ScriptedRun()
    )
    ex = await asyncio.wait_for(_run(HOSTS, transport, WindowRule((w,))), timeout=30)
    db = ex.host_runs["db1"]
    assert db.state is S.CANCELLED
    assert db.message is not None and "maintenance window 'w' closed at" in db.message
    assert ex.host_runs["web1"].state is S.SUCCEEDED
