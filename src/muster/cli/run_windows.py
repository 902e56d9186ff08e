"""``muster run``'s maintenance windows: ``--window``, ``--window-policy`` and the countdown.

Windows for an in-process run come from ``--window SPEC`` (every selected
host; repeatable) and from a host's ``muster_window`` inventory variable
(``"Sun 01:00-03:00 Europe/Berlin"``; several separated by ``;``; set it on a
group in ``[db:vars]`` to cover the group). A window that ends with
`` stop`` stops hosts still running when it closes. ``wait`` (the default)
holds hosts until their window opens, counting down on stderr; ``fail``
fails them at once; ``ignore`` runs them regardless.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
from collections.abc import Sequence

from muster.cli.common import fail
from muster.domain.hosts import Host
from muster.domain.windows import ClosePolicy, MaintenanceWindow, WindowScope, parse_recurring
from muster.engine.windows import WindowMode, WindowRule
from muster.errors import MusterError

__all__ = ["HOST_VAR", "window_rule"]

#: The inventory variable naming a host's (or, on a group, its hosts') windows.
HOST_VAR = "muster_window"


def _parse(spec: str, scope: WindowScope, target: str) -> MaintenanceWindow:
    text = spec.strip()
    policy = ClosePolicy.FINISH
    if text.endswith(" stop"):
        text, policy = text[: -len(" stop")], ClosePolicy.STOP
    return parse_recurring(text, scope=scope, target=target, close_policy=policy)


def window_rule(specs: Sequence[str], mode: WindowMode, hosts: Sequence[Host]) -> WindowRule:
    """The run's windows; bad specs stop the command before any host is contacted."""
    windows: list[MaintenanceWindow] = []
    try:
        for spec in specs:
            windows.append(_parse(spec, WindowScope.ALL, "*"))
        for host in hosts:
            raw = host.vars.get(HOST_VAR)
            for spec in str(raw or "").split(";"):
                if spec.strip():
                    windows.append(_parse(spec, WindowScope.HOST, host.name))
    except MusterError as exc:
        raise fail(f"maintenance window: {exc}") from exc
    return WindowRule(tuple(windows), mode, on_wait=_Countdown().heard)


class _Countdown:
    """One line on stderr per wait: the reason, then the time left until it opens."""

    def __init__(self) -> None:
        self._until: dt.datetime | None = None
        self._task: asyncio.Task[None] | None = None

    def heard(self, host: str, reason: str, opens: dt.datetime) -> None:
        if self._until is not None and self._until <= opens:
            return
        self._until = opens
        sys.stderr.write(f"{host}: waiting, {reason}\n")
        sys.stderr.flush()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        tty = sys.stderr.isatty()
        while self._until is not None:
            left = (self._until - dt.datetime.now(dt.UTC)).total_seconds()
            if left <= 0:
                break
            h, rest = divmod(int(left), 3600)
            m, s = divmod(rest, 60)
            text = f"maintenance window opens in {h:02d}:{m:02d}:{s:02d}"
            sys.stderr.write(f"\r{text}" if tty else f"{text}\n")
            sys.stderr.flush()
            await asyncio.sleep(1 if tty else min(60.0, max(left, 1.0)))
        if tty:
            sys.stderr.write("\n")
        self._until = None
