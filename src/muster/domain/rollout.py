"""Rollout arithmetic, pure: which hosts form each wave, which hosts failed and whether
that stops the rollout, and when a wave fits its hosts' maintenance windows.

The engine (:mod:`muster.engine.rollout`) asks these questions at run time;
:func:`forecast_rollout` asks the same ones ahead of time with the same
functions, so what the forecast says a wave will wait for is what the run
waits for.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from muster.domain.hosts import Host
from muster.domain.inventory import Inventory
from muster.domain.rollout_spec import RolloutSpec, Threshold
from muster.domain.selectors import select
from muster.domain.verification import HostEvidence
from muster.domain.windows import HORIZON, MaintenanceWindow, OpenPeriod, open_periods
from muster.domain.workflows.model import WorkflowError
from muster.domain.workflows.render import step_hosts
from muster.domain.workflows.results import StepResult
from muster.domain.workflows.validate import Graph

__all__ = [
    "FitStatus",
    "HostFailure",
    "WaveFit",
    "WaveForecast",
    "fit_wave",
    "forecast_rollout",
    "host_failures",
    "host_windows",
    "plan_waves",
    "rollout_reason",
    "rollout_target",
    "threshold_breached",
]


# -- waves ---------------------------------------------------------------------


def plan_waves(
    spec: RolloutSpec, hosts: Sequence[Host], inventory: Inventory | Sequence[Host]
) -> list[list[Host]]:
    """The hosts of each wave, in order; empty waves are dropped.

    ``hosts`` is the rollout's target (in its order). Selector waves pick from
    it by name (through ``inventory``, so groups work); counts and percents
    are cumulative over the target and round up (``"10%"`` of 5 hosts is 1
    host, never 0). A host is never in two waves; hosts no wave reaches are
    not rolled out.
    """
    target = list(dict.fromkeys(h.name for h in hosts))
    by_name = {h.name: h for h in hosts}
    total = len(target)
    inv = inventory if isinstance(inventory, Inventory) else _inventory_of(inventory)
    taken: set[str] = set()
    waves: list[list[Host]] = []
    for wave in spec.waves:
        if wave.selectors:
            picked = {h.name for h in select(inv, ",".join(wave.selectors))}
            names = [n for n in target if n in picked and n not in taken]
        else:
            if wave.count is not None:
                upto = min(wave.count, total)
            else:
                assert wave.percent is not None
                upto = min(total, math.ceil(wave.percent * total / 100 - 1e-9))
            need = max(0, upto - len(taken))
            names = [n for n in target if n not in taken][:need]
        if names:
            taken.update(names)
            waves.append([by_name[n] for n in names])
    return waves


def _inventory_of(hosts: Sequence[Host]) -> Inventory:
    inv = Inventory()
    for host in hosts:
        inv.add_host(host)
    return inv


def rollout_target(
    graph: Graph,
    inventory: Inventory | Sequence[Host],
    values: Mapping[str, Any],
    targets: str | None,
    *,
    strict: bool,
) -> list[Host]:
    """Every host some host step selects, in inventory order (a step whose targets
    cannot be resolved raises when ``strict``, else it is left to fail when it runs)."""
    chosen: dict[str, Host] = {}
    for step in graph.workflow.steps:
        if not step.type.runs_on_hosts:
            continue
        try:
            hosts = step_hosts(graph, step.id, inventory, values, targets)
        except WorkflowError:
            if strict:
                raise
            continue
        for host in hosts:
            chosen.setdefault(host.name, host)
    every = inventory.all_hosts() if isinstance(inventory, Inventory) else list(inventory)
    order = {h.name: i for i, h in enumerate(every)}
    return sorted(chosen.values(), key=lambda h: order.get(h.name, len(order)))


# -- failures and the threshold --------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostFailure:
    """Why a host counts as failed: ``reason`` is the host run's failure reason
    (``unreachable``, ``command_failed`` ...) or ``verification_failed``;
    ``gate`` says it fails the wave's gate whatever the threshold (a verification
    task or a gating verification failed on it)."""

    host: str
    reason: str
    detail: str
    step: str | None = None
    gate: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "host": self.host,
            "reason": self.reason,
            "detail": self.detail,
            "step": self.step,
            "gate": self.gate,
        }


#: Host-run reasons that all mean "the controller lost the host": a refused or
#: unroutable connect, a connect that timed out, a connection that went silent
#: mid-step (keepalives gave up). A rollout counts them alike, as ``unreachable``;
#: the detail keeps the transport's own reason.
_UNREACHABLE_REASONS = frozenset({"unreachable", "connect_timeout", "connection_lost"})


def rollout_reason(reason: str) -> str:
    """The reason a host failure counts under in a rollout (``unreachable`` for any
    way of losing the host, else the host run's own reason)."""
    return "unreachable" if reason in _UNREACHABLE_REASONS else reason


def host_failures(
    hosts: Iterable[str],
    results: Mapping[str, StepResult],
    evidence: Iterable[HostEvidence] = (),
    *,
    verification_tasks: Iterable[str] = (),
    gating: Iterable[str] = (),
    labels: Mapping[str, str] | None = None,
) -> dict[str, HostFailure]:
    """The first reason each of ``hosts`` failed, if it did.

    A host failed when a step did not succeed on it (in ``results`` order;
    ``labels`` renames synthetic steps in messages), or when its evidence of a
    verification named in ``gating`` did not pass. Verification tasks and
    gating verifications mark the failure as a gate failure; a host that failed
    a step keeps that reason (an ``unreachable`` host has no after-capture, and
    counts against the threshold as unreachable, not as a verification).
    """
    wanted = set(hosts)
    tasks = set(verification_tasks)
    gates = set(gating)
    names = labels or {}
    out: dict[str, HostFailure] = {}
    for step_id, result in results.items():
        for name, outcome in result.hosts.items():
            if name not in wanted or outcome.succeeded:
                continue
            gate = step_id in tasks
            previous = out.get(name)
            if previous is not None and (previous.gate or not gate):
                continue
            label = names.get(step_id, f"step {step_id}")
            why = outcome.message or outcome.stderr.strip()[-200:] or outcome.state
            own = outcome.reason or outcome.state
            reason = rollout_reason(own)
            state = outcome.state if reason == own else f"{outcome.state} ({own})"
            out[name] = HostFailure(
                host=name,
                reason=reason,
                detail=f"{label}: {state}: {why}",
                step=step_id,
                gate=gate,
            )
    for ev in evidence:
        if ev.host not in wanted or ev.passed or ev.verification not in gates:
            continue
        if ev.host in out:
            continue  # it failed a step: missing or odd evidence follows from that
        failed = [c.key for c in ev.checks if not c.passed]
        why = ev.error or (
            f"check(s) {', '.join(failed)} failed"
            if failed
            else f"unexpected drift in {', '.join(ev.drift)}"
        )
        out[ev.host] = HostFailure(
            host=ev.host,
            reason="verification_failed",
            detail=f"verification {ev.verification}: {why}",
            gate=True,
        )
    return out


def threshold_breached(threshold: Threshold, failed: int, counted: int) -> bool:
    """Whether ``failed`` of ``counted`` hosts stops the rollout."""
    return threshold.breached(failed, counted)


# -- windows -----------------------------------------------------------------------


def host_windows(
    windows: Mapping[str, Sequence[MaintenanceWindow]],
    inventory: Inventory | Sequence[Host],
    hosts: Iterable[Host],
) -> dict[str, tuple[MaintenanceWindow, ...]]:
    """The windows covering each host: every selector that picks it brings its windows.

    Hosts no selector picks get none (they are never held)."""
    inv = inventory if isinstance(inventory, Inventory) else _inventory_of(inventory)
    names = [h.name for h in hosts]
    out: dict[str, list[MaintenanceWindow]] = {n: [] for n in names}
    for selector, objects in windows.items():
        for host in select(inv, selector):
            if host.name in out:
                out[host.name].extend(objects)
    return {k: tuple(v) for k, v in out.items()}


class FitStatus(StrEnum):
    #: Every host's window is open now with time enough left.
    NOW = "now"
    #: The wave waits until ``starts_at``.
    WAITS = "waits"
    #: No instant within the horizon fits every host.
    WILL_NOT_FIT = "will_not_fit"


@dataclass(frozen=True, slots=True)
class WaveFit:
    status: FitStatus
    starts_at: dt.datetime | None
    #: The earliest close among the wave's windows at ``starts_at`` (None: no limit).
    closes_at: dt.datetime | None = None
    window: str | None = None
    reason: str = ""


def fit_wave(
    windows: Mapping[str, Sequence[MaintenanceWindow]],
    now: dt.datetime,
    duration: float,
    *,
    horizon: dt.timedelta = HORIZON,
) -> WaveFit:
    """The earliest instant ``>= now`` at which every host (``windows``: host ->
    its windows) is inside an open period with at least ``duration`` seconds left.

    Hosts without windows never hold a wave. Hosts sharing the same windows are
    looked at once, so a thousand hosts in three groups cost three lookups.
    """
    now = now.astimezone(dt.UTC)
    need = dt.timedelta(seconds=max(0.0, duration))
    distinct = {tuple(ws) for ws in windows.values() if ws}
    if not distinct:
        return WaveFit(FitStatus.NOW, now)
    end = now + horizon
    periods = [open_periods(list(ws), now, end) for ws in distinct]
    candidates = sorted({now} | {p.start for ps in periods for p in ps if now < p.start < end})
    for at in candidates:
        chosen: list[OpenPeriod] = []
        for ps in periods:
            p = next((p for p in ps if p.contains(at)), None)
            if p is None or (p.end is not None and p.end - at < need):
                break
            chosen.append(p)
        else:
            bounded = [p for p in chosen if p.end is not None]
            first = min(bounded, key=lambda p: p.end or at) if bounded else None
            name = first.window.name if first is not None and first.window is not None else None
            status = FitStatus.NOW if at == now else FitStatus.WAITS
            reason = "" if status is FitStatus.NOW else _wait_reason(periods, now, need, at)
            return WaveFit(status, at, first.end if first else None, name, reason)
    return WaveFit(
        FitStatus.WILL_NOT_FIT,
        None,
        reason=(
            f"no instant within {horizon.days} days has every host of the wave inside an "
            f"open maintenance window with {need} left"
        ),
    )


def _wait_reason(
    periods: list[list[OpenPeriod]], now: dt.datetime, need: dt.timedelta, at: dt.datetime
) -> str:
    """Why a wave that does not fit ``now`` waits until ``at``."""
    reason = "a host's maintenance window is closed now"
    for ps in periods:
        p = next((p for p in ps if p.contains(now)), None)
        if p is None:
            break
        if p.end is not None and p.end - now < need:
            reason = (
                f"the wave needs {need} but a host's window closes at {p.end:%Y-%m-%d %H:%M:%S} UTC"
            )
            break
    return f"{reason}; it fits at {at:%Y-%m-%d %H:%M:%S} UTC"


@dataclass(frozen=True, slots=True)
class WaveForecast:
    index: int
    hosts: tuple[str, ...]
    fit: WaveFit
    #: The duration the forecast assumed for the wave.
    duration: float

    @property
    def will_not_fit(self) -> bool:
        return self.fit.status is FitStatus.WILL_NOT_FIT

    def to_dict(self) -> dict[str, object]:
        return {
            "index": self.index,
            "hosts": list(self.hosts),
            "status": self.fit.status.value,
            "starts_at": self.fit.starts_at.isoformat() if self.fit.starts_at else None,
            "closes_at": self.fit.closes_at.isoformat() if self.fit.closes_at else None,
            "window": self.fit.window,
            "reason": self.fit.reason,
            "duration": self.duration,
        }


def forecast_rollout(
    waves: Sequence[Sequence[str]],
    windows: Mapping[str, Sequence[MaintenanceWindow]],
    now: dt.datetime,
    *,
    wave_duration: float | None = None,
    soak: float = 0.0,
    horizon: dt.timedelta = HORIZON,
) -> list[WaveForecast]:
    """When each wave is planned to start, in which window, or that it will not fit.

    Each wave is fitted (with :func:`fit_wave`, as the run does) after the
    previous one's planned end: its start plus ``wave_duration`` plus ``soak``.
    After a wave that will not fit, the rest are not placed either.
    """
    out: list[WaveForecast] = []
    at = now
    duration = wave_duration or 0.0
    stuck = False
    for index, hosts in enumerate(waves):
        mine = {h: windows.get(h, ()) for h in hosts}
        if stuck:
            fit = WaveFit(FitStatus.WILL_NOT_FIT, None, reason="an earlier wave will not fit")
        else:
            fit = fit_wave(mine, at, duration, horizon=horizon)
        out.append(WaveForecast(index, tuple(hosts), fit, duration))
        if fit.starts_at is None:
            stuck = True
        else:
            at = fit.starts_at + dt.timedelta(seconds=duration + soak)
    return out
