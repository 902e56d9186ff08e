"""plan_rollout: the one planning function the engine and ``muster workflow forecast``
share; rollout_keys: what makes a definition need the rollout engine."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from muster.domain.hosts import Host
from muster.domain.inventory import Inventory
from muster.domain.rollout import FitStatus
from muster.domain.rollout_plan import plan_rollout, rollout_keys
from muster.domain.workflows import WorkflowError, parse_workflow, validate

NOW = dt.datetime(2026, 1, 4, 0, 30, tzinfo=dt.UTC)  # a Sunday


def _inventory() -> Inventory:
    inv = Inventory()
    for name, group in (("w1", "web"), ("w2", "web"), ("w3", "web"), ("d1", "db")):
        inv.add_host(Host(name, groups=(group,)))
    return inv


def _doc(**extra: Any) -> dict[str, Any]:
    return {"name": "p", "steps": [{"id": "a", "targets": "web", "command": "x"}], **extra}


def test_waves_windows_and_forecast_planned_together() -> None:
    wf = parse_workflow(
        _doc(
            rollout={"waves": [1, "100%"], "wave_duration": "10m", "soak": "5m"},
            windows={"web": "Sun 01:00-03:00"},
        )
    )
    plan = plan_rollout(wf, validate(wf), _inventory(), {}, None, NOW)
    assert [[h.name for h in w] for w in plan.waves] == [["w1"], ["w2", "w3"]]
    assert [h.name for h in plan.target] == ["w1", "w2", "w3"]
    assert plan.unplanned == ()
    assert sorted(plan.windows) == ["w1", "w2", "w3"]
    first, second = plan.forecast
    assert first.fit.status is FitStatus.WAITS
    assert first.fit.starts_at == dt.datetime(2026, 1, 4, 1, 0, tzinfo=dt.UTC)
    # The second wave is placed after the first one's duration and soak.
    assert second.fit.starts_at == dt.datetime(2026, 1, 4, 1, 15, tzinfo=dt.UTC)


def test_horizon_bounds_the_search() -> None:
    wf = parse_workflow(_doc(rollout={"waves": ["100%"]}, windows={"web": "Sat 01:00-02:00"}))
    plan = plan_rollout(wf, validate(wf), _inventory(), {}, None, NOW, horizon=dt.timedelta(days=1))
    assert plan.forecast[0].will_not_fit
    later = plan_rollout(wf, validate(wf), _inventory(), {}, None, NOW)
    assert later.forecast[0].fit.status is FitStatus.WAITS


def test_hosts_no_wave_reaches_are_unplanned() -> None:
    wf = parse_workflow(_doc(rollout={"waves": [["w2"]]}))
    plan = plan_rollout(wf, validate(wf), _inventory(), {}, None, NOW)
    assert plan.unplanned == ("w1", "w3")


def test_without_a_rollout_the_whole_target_is_one_wave() -> None:
    wf = parse_workflow(_doc())
    plan = plan_rollout(wf, validate(wf), _inventory(), {}, None, NOW)
    assert [[h.name for h in w] for w in plan.waves] == [["w1", "w2", "w3"]]
    assert plan.forecast[0].fit.status is FitStatus.NOW


def test_a_rollout_that_selects_no_host_is_refused_naming_the_targets() -> None:
    doc = _doc(rollout={"waves": ["100%"]})
    doc["steps"][0]["targets"] = "nothing*"
    wf = parse_workflow(doc)
    with pytest.raises(WorkflowError, match=r"selects no host.*nothing\*") as err:
        plan_rollout(wf, validate(wf), _inventory(), {}, None, NOW)
    assert err.value.field == "rollout"


@pytest.mark.parametrize(
    ("extra", "keys"),
    [
        ({}, []),
        ({"rollout": {"waves": ["100%"]}}, ["rollout"]),
        (
            {"verifications": {"v": {"before_tasks": ["a"], "after_tasks": ["a"],
                                     "commands": {"k": "echo"}}}},
            ["verifications"],
        ),
        ({"windows": {"web": "Sun 01:00-02:00"}}, ["windows"]),
    ],
)  # fmt: skip
def test_rollout_keys(extra: dict[str, Any], keys: list[str]) -> None:
    assert rollout_keys(parse_workflow(_doc(**extra))) == keys
