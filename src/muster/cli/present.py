"""How ``muster run`` and ``muster exec start --follow`` show an execution to a person.

:class:`LiveReport` feeds the in-process dispatcher's output and host ends
to a :class:`~muster.cli.human.HumanReport` (which prints host output as
plain, terminal-safe text); :func:`summary_table` is the closing table.
The table is Rich, but every cell that came from a host is a ``Text`` (no
markup parsed) made terminal-safe first; with many hosts it lists only the
hosts worth a look (not succeeded, or printing ``@@`` events), since the
groups above it already say what the rest did.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from muster.cli.host_text import render_event, terminal_safe
from muster.cli.human import SUMMARY_EVENTS, HostEnd, HumanReport
from muster.domain.executions import Execution, HostRun
from muster.domain.states import FailureReason, HostRunState
from muster.engine.dispatcher import ExecutionListener
from muster.transports.base import Stream

__all__ = ["LiveReport", "host_end", "summary_table"]

#: Up to this many hosts, the summary lists every one.
EVERY_HOST_UP_TO = 20
#: Rows the summary shows at most; the rest are counted (``--json`` has all).
MAX_ROWS = 50

_STYLE = {
    HostRunState.SUCCEEDED: "green",
    HostRunState.FAILED: "red",
    HostRunState.TIMED_OUT: "magenta",
    HostRunState.LOST: "red",
    HostRunState.CANCELLED: "yellow",
    HostRunState.SKIPPED: "dim",
    HostRunState.REJECTED: "yellow",
}


def host_end(run: HostRun) -> HostEnd:
    """A finished in-process host run as the report shows it."""
    return HostEnd(
        host=run.host,
        state=run.state,
        exit_code=run.exit_code,
        duration=run.duration,
        reason=run.reason.value if isinstance(run.reason, FailureReason) else None,
        message=run.message,
        events=list(run.events[:SUMMARY_EVENTS]),
        event_count=len(run.events),
        events_dropped=run.events_dropped,
    )


class LiveReport(ExecutionListener):
    """The dispatcher's listener for ``muster run``'s human output."""

    def __init__(self, report: HumanReport) -> None:
        self.report = report

    def on_state(self, execution: Execution, host_run: HostRun) -> None:
        if host_run.state.terminal:
            self.report.finished(host_end(host_run))

    def on_output(self, execution: Execution, host_run: HostRun, stream: Stream, text: str) -> None:
        self.report.output(host_run.host, stream.value, text)


def _events_cell(end: HostEnd) -> str:
    if end.events_dropped:
        return (
            f"{end.event_count + end.events_dropped} events; --json has the first "
            f"{end.event_count} (the rest were past the capture's budget)"
        )
    if not end.event_count:
        return ""
    if end.event_count > SUMMARY_EVENTS:
        return f"{end.event_count} events (--json has them all)"
    return "; ".join(render_event(e, limit=200) for e in end.events)


def summary_table(ends: Sequence[HostEnd], title: str) -> Table:
    """The closing table: counts, and a row per host (or per host worth a look)."""
    counts: dict[str, int] = {}
    for end in ends:
        counts[end.state.value] = counts.get(end.state.value, 0) + 1
    caption = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    rows = list(ends)
    if len(rows) > EVERY_HOST_UP_TO:
        rows = [
            e
            for e in rows
            if e.state is not HostRunState.SUCCEEDED or e.event_count or e.events_dropped
        ]
    hidden = len(ends) - len(rows[:MAX_ROWS])
    if hidden:
        caption += f"; {hidden} hosts not listed (--json lists every host)"
    table = Table(title=title, caption=caption)
    with_events = any(e.event_count or e.events_dropped for e in rows)
    for col in ("host", "state", "exit", "duration", "detail", "events")[: 6 if with_events else 5]:
        table.add_column(col, overflow="fold")
    for end in rows[:MAX_ROWS]:
        detail = ""
        if end.state is not HostRunState.SUCCEEDED:
            detail = end.first_error or end.message or (end.reason or "")
        table.add_row(
            Text(terminal_safe(end.host)),
            Text(end.state.value, style=_STYLE.get(end.state, "white")),
            "" if end.exit_code is None else str(end.exit_code),
            "" if end.duration is None else f"{end.duration:.2f}s",
            Text(terminal_safe(detail[:300])),
            *([Text(_events_cell(end))] if with_events else []),
        )
    return table
