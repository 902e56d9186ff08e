"""How a rollout looks on a terminal: one line per change while it runs, a summary
at the end, and the forecast table.

:class:`RolloutProgress` is the engine's observer. The engine calls it with
the whole :class:`~muster.engine.rollout_result.RolloutRun` after every
change; the view remembers what it already said and prints only what moved
(a wave's state, its gate, each host's rollback), so piped output stays a
readable log instead of a redrawn screen. Text from hosts and definitions is
escaped: a host name like ``[web]`` prints as written.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table

from muster.domain.rollout import FitStatus, WaveForecast
from muster.engine.rollout_result import (
    RollbackState,
    RolloutRun,
    RolloutStatus,
    WaveResult,
    WaveStatus,
)

__all__ = ["RolloutProgress", "forecast_view", "summary_view", "wave_line"]

_STYLE = {
    WaveStatus.SUCCEEDED: "green",
    WaveStatus.ROLLED_BACK: "yellow",
    WaveStatus.FAILED: "red",
    WaveStatus.ROLLBACK_FAILED: "bold red",
    WaveStatus.ABORTED: "red",
    WaveStatus.WAITING_WINDOW: "cyan",
}
_STATUS_STYLE = {
    RolloutStatus.SUCCEEDED: "bold green",
    RolloutStatus.ROLLED_BACK: "bold yellow",
    RolloutStatus.ABORTED: "bold red",
    RolloutStatus.FAILED: "bold red",
    RolloutStatus.ROLLBACK_FAILED: "bold red",
}
_HOSTS_SHOWN = 8


def _hosts(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_HOSTS_SHOWN])
    more = len(names) - _HOSTS_SHOWN
    return escape(shown + (f" (+{more} more)" if more > 0 else ""))


def wave_line(wave: WaveResult, total: int) -> str:
    """One line (Rich markup) saying where ``wave`` is now."""
    head = f"wave {wave.index + 1}/{total}"
    style = _STYLE.get(wave.status, "bold")
    text = f"[{style}]{head} {wave.status.value}[/]"
    if wave.status is WaveStatus.RUNNING:
        return f"{text}: {len(wave.hosts)} host(s): {_hosts(wave.hosts)}"
    if wave.status is WaveStatus.WAITING_WINDOW:
        until = wave.waited_for_window_until
        when = f"until {until:%Y-%m-%d %H:%M} UTC" if until is not None else ""
        return f"{text} {when}: {escape(wave.wait_reason)}"
    if wave.status in (WaveStatus.SUCCEEDED, WaveStatus.FAILED, WaveStatus.ABORTED):
        gate = wave.gate
        if gate is None:
            return f"{text}{': ' + escape(wave.wait_reason) if wave.wait_reason else ''}"
        verdict = "gate passed" if gate.passed else f"gate failed: {escape(gate.why)}"
        return f"{text}: {verdict} ({gate.failed} failed of {gate.counted} counted)"
    if wave.status is WaveStatus.SOAKING:
        return f"{text}: gate passed, soaking before the verification tasks run again"
    if wave.status is WaveStatus.ROLLING_BACK:
        return f"[yellow]rollback[/] {head}: rolling back {len(wave.hosts)} host(s)"
    if wave.status in (WaveStatus.ROLLED_BACK, WaveStatus.ROLLBACK_FAILED):
        return f"[yellow]rollback[/] {text}"
    return text


def _rollback_line(host: str, wave: int, state: RollbackState, message: str) -> str:
    style = "bold red" if state.flagged else "yellow"
    flag = " [bold red]FLAGGED[/]" if state.flagged else ""
    return (
        f"[yellow]rollback[/]   wave {wave + 1} {escape(host)}: "
        f"[{style}]{state.value}[/]{flag}: {escape(message)}"
    )


class RolloutProgress:
    """The engine's observer: prints each wave's and each rollback's changes once."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._waves: dict[int, tuple[WaveStatus, object]] = {}
        self._rolled: set[str] = set()
        self._failures: set[tuple[int, str]] = set()

    def __call__(self, run: RolloutRun) -> None:
        total = len(run.waves)
        for wave in run.waves:
            seen = (wave.status, wave.waited_for_window_until)
            if wave.status in (WaveStatus.PENDING, WaveStatus.NOT_RUN):
                continue
            if self._waves.get(wave.index) != seen:
                self._waves[wave.index] = seen
                self.console.print(wave_line(wave, total))
                for host, failure in sorted(wave.failed_hosts.items()):
                    if (wave.index, host) not in self._failures:
                        self._failures.add((wave.index, host))
                        self.console.print(
                            f"  [red]failed[/] {escape(host)}: {escape(failure.reason)}: "
                            f"{escape(failure.detail)}"
                        )
        for host, outcome in run.rollback.items():
            if host not in self._rolled:
                self._rolled.add(host)
                self.console.print(
                    _rollback_line(host, outcome.wave, outcome.state, outcome.message)
                )


def summary_view(run: RolloutRun) -> RenderableType:
    """The final summary: status, waves, servers, verification, rollback, flagged."""
    style = _STATUS_STYLE.get(run.status, "bold")
    parts: list[RenderableType] = [
        f"\n[{style}]rollout {escape(run.workflow)} {run.status.value}[/]"
        + (f": {escape(run.message)}" if run.message else "")
    ]
    waves = Table(title="waves", title_justify="left", show_edge=False)
    for col in ("wave", "status", "hosts", "gate", "failed"):
        waves.add_column(col)
    for wave in run.waves:
        gate = "-"
        if wave.gate is not None:
            gate = "passed" if wave.gate.passed else "failed"
        waves.add_row(
            f"{wave.index + 1}/{len(run.waves)}",
            wave.status.value,
            _hosts(wave.hosts),
            gate,
            _hosts(sorted(wave.failed_hosts)) or "-",
        )
    parts.append(waves)
    ok, bad = run.successful_servers, run.failed_servers
    parts.append(f"successful servers ({len(ok)}): {_hosts(ok) or '-'}")
    parts.append(f"failed servers ({len(bad)}): {_hosts(bad) or '-'}")
    if run.unplanned:
        parts.append(f"not in any wave ({len(run.unplanned)}): {_hosts(run.unplanned)}")
    for name, by_host in sorted(run.verification_results.items()):
        failed = sorted(h for h, e in by_host.items() if not e.passed)
        drift = sorted(h for h, e in by_host.items() if e.drift)
        verdict = "[green]passed[/]" if not failed else f"[red]failed on {_hosts(failed)}[/]"
        extra = f", drift on {_hosts(drift)}" if drift else ""
        parts.append(f"verification {escape(name)}: {verdict} ({len(by_host)} host(s){extra})")
    if run.rollback:
        rolled = [h for h, o in run.rollback.items() if o.state is RollbackState.ROLLED_BACK]
        parts.append(f"rolled back ({len(rolled)}), newest wave first: {_hosts(rolled) or '-'}")
    flagged = run.flagged_hosts
    if flagged:
        parts.append(f"[bold red]flagged (rollback failed) ({len(flagged)}):[/] {_hosts(flagged)}")
        for host in flagged:
            parts.append(f"  {escape(host)}: {escape(run.rollback[host].message)}")
    return Group(*parts)


def forecast_view(
    workflow: str, forecast: Sequence[WaveForecast], unplanned: Sequence[str]
) -> RenderableType:
    """When each wave is planned to start, in which window, or why it will not fit."""
    table = Table(
        title=f"rollout forecast for {escape(workflow)}", title_justify="left", show_edge=False
    )
    for col in ("wave", "hosts", "starts", "window", "closes", "note"):
        table.add_column(col)
    for item in forecast:
        fit = item.fit
        starts = "-"
        if fit.status is FitStatus.NOW:
            starts = "now"
        elif fit.starts_at is not None:
            starts = f"{fit.starts_at:%Y-%m-%d %H:%M} UTC"
        note = escape(fit.reason)
        if fit.status is FitStatus.WILL_NOT_FIT:
            note = f"[bold red]will not fit[/]: {note}"
        table.add_row(
            f"{item.index + 1}/{len(forecast)}",
            _hosts(item.hosts),
            starts,
            escape(fit.window or "-"),
            f"{fit.closes_at:%Y-%m-%d %H:%M} UTC" if fit.closes_at is not None else "-",
            note,
        )
    parts: list[RenderableType] = [table]
    if unplanned:
        parts.append(f"not in any wave ({len(unplanned)}): {_hosts(unplanned)}")
    return Group(*parts)
