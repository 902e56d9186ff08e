"""A rollout planned ahead, pure: its target, its waves, each host's windows and
when each wave is forecast to start.

One function, :func:`plan_rollout`, answers this for both the engine (which
then waits for each wave as planned) and ``muster workflow forecast`` (which
only prints it), so the forecast and the run cannot disagree about which hosts
form a wave or which window it waits for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from muster.domain.hosts import Host
from muster.domain.inventory import Inventory
from muster.domain.rollout import (
    WaveForecast,
    forecast_rollout,
    host_windows,
    plan_waves,
    rollout_target,
)
from muster.domain.windows import HORIZON, MaintenanceWindow
from muster.domain.workflows.model import Workflow, WorkflowError
from muster.domain.workflows.rollout_parse import window_objects
from muster.domain.workflows.validate import Graph

__all__ = ["RolloutPlan", "plan_rollout", "rollout_keys"]


@dataclass(frozen=True, slots=True)
class RolloutPlan:
    #: Every host some host step selects, in inventory order.
    target: tuple[Host, ...]
    #: The hosts of each wave (one wave of the whole target without a rollout).
    waves: tuple[tuple[Host, ...], ...]
    #: Target hosts no wave reaches (left alone).
    unplanned: tuple[str, ...]
    #: Host -> the maintenance windows covering it (empty without ``windows:``).
    windows: Mapping[str, tuple[MaintenanceWindow, ...]]
    forecast: tuple[WaveForecast, ...]


def plan_rollout(
    workflow: Workflow,
    graph: Graph,
    inventory: Inventory | Sequence[Host],
    values: Mapping[str, Any],
    targets: str | None,
    now: dt.datetime,
    *,
    horizon: dt.timedelta = HORIZON,
) -> RolloutPlan:
    """Plan ``workflow`` over ``inventory`` as the engine will run it from ``now``.

    A workflow with a rollout resolves its targets strictly (a selector that
    matches nothing raises, naming the step); without one, a step that cannot
    resolve is left to fail when it runs, as the plain workflow engine does.
    """
    spec = workflow.rollout
    target = rollout_target(graph, inventory, values, targets, strict=spec is not None)
    if spec is not None and not target:
        # Zero waves would "succeed" having changed nothing: a typo in a group name
        # must not read as a finished rollout.
        chosen = sorted(
            {
                s.targets or targets or workflow.targets or "all"
                for s in workflow.steps
                if s.type.runs_on_hosts
            }
        )
        raise WorkflowError(
            f"the rollout selects no host: no step's targets ({', '.join(chosen)}) match a "
            "host of the inventory",
            field="rollout",
        )
    waves = plan_waves(spec, target, inventory) if spec is not None else [target]
    planned = {h.name for w in waves for h in w}
    windows: dict[str, list[MaintenanceWindow]] = {
        sel: window_objects(sel, text) for sel, text in workflow.windows.items()
    }
    by_host = host_windows(windows, inventory, target) if windows else {}
    forecast = forecast_rollout(
        [[h.name for h in w] for w in waves],
        by_host,
        now,
        wave_duration=spec.wave_duration if spec is not None else None,
        soak=spec.soak if spec is not None else 0.0,
        horizon=horizon,
    )
    return RolloutPlan(
        target=tuple(target),
        waves=tuple(tuple(w) for w in waves),
        unplanned=tuple(h.name for h in target if h.name not in planned),
        windows=by_host,
        forecast=tuple(forecast),
    )


def rollout_keys(workflow: Workflow) -> list[str]:
    """The top-level keys that need the rollout engine (waves, before/after
    captures, wave windows): the plain DAG engine would silently ignore them, so
    a face that runs workflows flat must route or refuse a definition that has any."""
    keys = []
    if workflow.rollout is not None:
        keys.append("rollout")
    if workflow.verifications:
        keys.append("verifications")
    if workflow.windows:
        keys.append("windows")
    return keys
