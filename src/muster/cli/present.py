"""How ``muster run`` shows an execution: live progress, per-host lines, summary."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from muster.domain.executions import Execution, HostRun
from muster.domain.states import HostRunState
from muster.engine.dispatcher import ExecutionListener
from muster.transports.base import Stream

__all__ = ["LiveReport", "summary_table"]

_STYLE = {
    HostRunState.SUCCEEDED: "green",
    HostRunState.FAILED: "red",
    HostRunState.TIMED_OUT: "magenta",
    HostRunState.LOST: "red",
    HostRunState.CANCELLED: "yellow",
    HostRunState.SKIPPED: "dim",
    HostRunState.REJECTED: "yellow",
}


class LiveReport(ExecutionListener):
    """A progress bar, and a line per host (with its output) as each one ends."""

    def __init__(
        self, console: Console, total: int, *, progress: bool = True, show_output: bool = True
    ) -> None:
        self._console = console
        self._show_progress = progress
        self._show_output = show_output
        self._progress = Progress(
            TextColumn("[bold]running"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed", style="red"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task = self._progress.add_task("run", total=total, failed=0)
        self._failed = 0

    def __enter__(self) -> LiveReport:
        if self._show_progress:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def on_state(self, execution: Execution, host_run: HostRun) -> None:
        if not host_run.state.terminal:
            return
        if host_run.state not in (HostRunState.SUCCEEDED, HostRunState.SKIPPED):
            self._failed += 1
        self._progress.update(self._task, advance=1, failed=self._failed)
        self._console.print(_host_line(host_run), highlight=False)
        if self._show_output:
            for text, style in ((host_run.stdout, ""), (host_run.stderr, "red")):
                body = text.rstrip("\n")
                if body:
                    self._console.print(f"[{style}]{escape(body)}[/]" if style else escape(body))

    def on_output(self, execution: Execution, host_run: HostRun, stream: Stream, text: str) -> None:
        """Output is shown per host when it ends, so lines of hosts never interleave."""


def _host_line(run: HostRun) -> str:
    style = _STYLE.get(run.state, "white")
    parts = [f"[bold]{escape(run.host)}[/]", f"[{style}]{run.state.value.upper()}[/]"]
    if run.exit_code is not None:
        parts.append(f"rc={run.exit_code}")
    if run.duration is not None:
        parts.append(f"{run.duration:.2f}s")
    if run.state != HostRunState.SUCCEEDED and run.message:
        parts.append(escape(run.message))
    return " | ".join(parts)


def summary_table(execution: Execution) -> Table:
    runs = list(execution.host_runs.values())
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.state.value] = counts.get(r.state.value, 0) + 1
    caption = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    table = Table(title=f"execution {execution.status.value}", caption=caption)
    for col in ("host", "state", "exit", "duration", "detail"):
        table.add_column(col, overflow="fold")
    for r in runs:
        detail = ""
        if r.state != HostRunState.SUCCEEDED:
            first_err = next((ln for ln in r.stderr.splitlines() if ln.strip()), "")
            detail = first_err or r.message or (r.reason.value if r.reason else "")
        table.add_row(
            escape(r.host),
            f"[{_STYLE.get(r.state, 'white')}]{r.state.value}[/]",
            "" if r.exit_code is None else str(r.exit_code),
            "" if r.duration is None else f"{r.duration:.2f}s",
            escape(detail),
        )
    return table
