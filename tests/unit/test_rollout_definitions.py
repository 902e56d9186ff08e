"""The rollout, verifications and windows keys of a workflow: parse, check, write back,
and the workflows a rollout derives (captures woven in, rollback, one-step rollout)."""

from __future__ import annotations

from typing import Any

import pytest

import muster
from muster.domain.rollout_spec import RetrySpec, Threshold, ThresholdScope, WaveSpec
from muster.domain.verification import capture_script
from muster.domain.workflows import (
    WorkflowError,
    load_workflow_text,
    parse_workflow,
    validate,
    workflow_hash,
    workflow_to_dict,
)
from muster.domain.workflows.rollout_steps import (
    rollback_workflow,
    verification_task_workflow,
    with_captures,
)

MARKER = "MUSTER-CAPTURE-0123456789abcdef"
STEPS: list[dict[str, Any]] = [
    {"id": "backup", "command": "echo b", "targets": "*", "rollback": "echo undo b"},
    {"id": "update_repos", "command": "echo u", "targets": "*"},
    {
        "id": "upgrade_packages",
        "command": "echo up",
        "targets": "*",
        "depends_on": ["update_repos"],
        "rollback": "echo undo up",
    },
    {
        "id": "verify_web",
        "command": "echo ok",
        "targets": "web",
        "depends_on": ["upgrade_packages"],
    },
]
VERIFY = {
    "before_tasks": ["backup"],
    "after_tasks": ["upgrade_packages"],
    "commands": {"package_versions": "dpkg -l"},
    "comparisons": {
        "package_versions": {
            "type": "regex_match",
            "pattern": r"ii\s+openssl\s+(\S+)",
            "expected_change": "version_increase",
        }
    },
}


def _doc(**extra: Any) -> dict[str, Any]:
    return {"name": "os_patching", "steps": [dict(s) for s in STEPS], **extra}


def test_seed_004_keys_parse_and_round_trip() -> None:
    wf = parse_workflow(
        _doc(
            rollout={
                "groups": [["web01"], ["web02", "web03"], ["db_servers"], 3, "50%", "100%"],
                "verification_tasks": ["verify_web"],
                "auto_rollback": True,
                "soak": "2m",
                "failure_threshold": "10%",
                "threshold_scope": "rollout",
                "wave_duration": "20m",
                "rollback_retry": {"tries": 3, "delay": "1s", "backoff": 3},
            },
            verifications={"verify_package_versions": VERIFY},
            windows={
                "web_servers": "Sunday 01:00-03:00",
                "db": ["Sun 03:00-05:00", "Sat 01:00-02:00"],
            },
        )
    )
    validate(wf)
    spec = wf.rollout
    assert spec is not None
    assert spec.waves == (
        WaveSpec(("web01",)),
        WaveSpec(("web02", "web03")),
        WaveSpec(("db_servers",)),
        WaveSpec(count=3),
        WaveSpec(percent=50),
        WaveSpec(percent=100),
    )
    assert (spec.auto_rollback, spec.soak, spec.wave_duration) == (True, 120.0, 1200.0)
    assert spec.failure_threshold == Threshold(count=None, percent=10)
    assert spec.threshold_scope is ThresholdScope.ROLLOUT
    assert spec.rollback_retry == RetrySpec(tries=3, delay=1.0, backoff=3.0)
    assert wf.step("backup").rollback == "echo undo b"
    assert [v.name for v in wf.verifications] == ["verify_package_versions"]
    assert wf.windows == {
        "web_servers": "Sunday 01:00-03:00",
        "db": "Sun 03:00-05:00; Sat 01:00-02:00",
    }
    data = workflow_to_dict(wf)
    again = parse_workflow(data)
    assert workflow_to_dict(again) == data
    assert workflow_hash(again) == workflow_hash(wf)


def test_defaults_are_not_written_back() -> None:
    wf = parse_workflow(_doc(rollout={"waves": [1, "100%"]}))
    assert workflow_to_dict(wf)["rollout"] == {"waves": [1, "100%"]}
    assert wf.rollout is not None and wf.rollout.failure_threshold == Threshold()


def test_list_form_of_verifications() -> None:
    wf = parse_workflow(_doc(verifications=[{"name": "v", **VERIFY}]))
    assert [v.name for v in wf.verifications] == ["v"]


@pytest.mark.parametrize(
    ("extra", "field", "text"),
    [
        ({"rollout": "fast"}, "rollout", "must be a mapping"),
        ({"rollout": {"waves": [1], "speed": 2}}, "rollout.speed", "unknown key"),
        ({"rollout": {"waves": [1], "groups": [1]}}, "rollout.groups", "not both"),
        ({"rollout": {"waves": []}}, "rollout.waves", "non-empty list"),
        ({"rollout": {}}, "rollout.groups", "non-empty list"),
        ({"rollout": {"waves": [0]}}, "rollout.waves[0]", "at least 1"),
        ({"rollout": {"waves": [True]}}, "rollout.waves[0]", "a wave is"),
        ({"rollout": {"waves": ["0%"]}}, "rollout.waves[0]", "above 0"),
        ({"rollout": {"waves": ["101%"]}}, "rollout.waves[0]", "at most 100"),
        ({"rollout": {"waves": ["x%"]}}, "rollout.waves[0]", "not a percent"),
        ({"rollout": {"waves": ["50%", "10%"]}}, "rollout.waves[1]", "cumulative"),
        ({"rollout": {"waves": [5, 2]}}, "rollout.waves[1]", "cumulative"),
        ({"rollout": {"waves": [[""]]}}, "rollout.waves[0]", "cannot be empty"),
        ({"rollout": {"waves": [{"a": 1}]}}, "rollout.waves[0]", "a wave is"),
        (
            {"rollout": {"waves": [1], "auto_rollback": "yes"}},
            "rollout.auto_rollback",
            "true or false",
        ),
        (
            {"rollout": {"waves": [1], "threshold_scope": "fleet"}},
            "rollout.threshold_scope",
            "'wave'",
        ),
        (
            {"rollout": {"waves": [1], "failure_threshold": -1}},
            "rollout.failure_threshold",
            "negative",
        ),
        (
            {"rollout": {"waves": [1], "failure_threshold": "100%"}},
            "rollout.failure_threshold",
            "percent",
        ),
        (
            {"rollout": {"waves": [1], "failure_threshold": 1.5}},
            "rollout.failure_threshold",
            "count",
        ),
        (
            {"rollout": {"waves": [1], "failure_threshold": False}},
            "rollout.failure_threshold",
            "count",
        ),
        ({"rollout": {"waves": [1], "soak": "soon"}}, "rollout.soak", ""),
        ({"rollout": {"waves": [1], "soak": -1}}, "rollout.soak", "positive duration"),
        ({"rollout": {"waves": [1], "soak": [1]}}, "rollout.soak", "must be a duration"),
        ({"rollout": {"waves": [1], "rollback_retry": "x"}}, "rollout.rollback_retry", "tries"),
        (
            {"rollout": {"waves": [1], "rollback_retry": {"n": 1}}},
            "rollout.rollback_retry.n",
            "unknown",
        ),
        (
            {"rollout": {"waves": [1], "rollback_retry": 0}},
            "rollout.rollback_retry.tries",
            "1 to 100",
        ),
        (
            {"rollout": {"waves": [1], "rollback_retry": {"backoff": 0.5}}},
            "rollout.rollback_retry.backoff",
            "1 to 10",
        ),
        (
            {"rollout": {"waves": [1], "verification_tasks": [3]}},
            "rollout.verification_tasks",
            "step id",
        ),
        (
            {"rollout": {"waves": [1], "verification_tasks": ["nope"]}},
            "rollout.verification_tasks",
            "unknown step 'nope'",
        ),
        ({"verifications": "v"}, "verifications", "mapping"),
        ({"verifications": [{"x": 1}]}, "verifications[0]", "with a name"),
        (
            {"verifications": [{"name": "v", **VERIFY}, {"name": "v", **VERIFY}]},
            "verifications.v",
            "twice",
        ),
        (
            {"verifications": {"v": {**VERIFY, "before_tasks": ["nope"]}}},
            "verifications.v.before_tasks",
            "unknown step 'nope'",
        ),
        (
            {"verifications": {"v": {**VERIFY, "after_tasks": []}}},
            "verifications.v.after_tasks",
            "at least one",
        ),
        ({"windows": "Sun 01:00-03:00"}, "windows", "mapping"),
        ({"windows": {"web": 5}}, "windows.web", "window spec"),
        ({"windows": {"web": "Someday 01:00-03:00"}}, "windows.web", ""),
        ({"windows": {"web": "2026-01-01T01:00Z/later"}}, "windows.web", "ISO period"),
        ({"windows": {"web": " ; "}}, "windows.web", "names no window"),
    ],
)
def test_errors_name_the_field(extra: dict[str, Any], field: str, text: str) -> None:
    with pytest.raises(WorkflowError) as caught:
        validate(parse_workflow(_doc(**extra)))
    assert caught.value.field == field
    assert text in caught.value.message


def test_rollback_only_on_host_steps() -> None:
    doc = _doc()
    doc["steps"].append({"id": "wait", "delay": 5, "rollback": "echo"})
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(doc)
    assert caught.value.field == "steps.wait.rollback"


@pytest.mark.parametrize("ref", ["{{step_backup.stdout}}", "{{params.nope}}"])
def test_a_rollback_reads_declared_parameters_only(ref: str) -> None:
    doc = _doc(parameters=[{"name": "version", "type": "string"}])
    doc["steps"][0]["rollback"] = f"echo {{{{params.version}}}} {ref}"
    with pytest.raises(WorkflowError) as caught:
        validate(parse_workflow(doc))
    assert caught.value.field == "steps.backup.rollback"
    doc["steps"][0]["rollback"] = "echo {{params.version}}"
    validate(parse_workflow(doc))


def test_a_verification_task_must_run_on_hosts() -> None:
    doc = _doc(rollout={"waves": [1], "verification_tasks": ["wait"]})
    doc["steps"].append({"id": "wait", "delay": 5})
    with pytest.raises(WorkflowError, match="does not run on hosts"):
        validate(parse_workflow(doc))


def test_captures_are_woven_around_the_tasks_without_cycles() -> None:
    wf = parse_workflow(_doc(verifications={"pkgs": VERIFY}))
    woven, captures = with_captures(wf, MARKER)
    graph = validate(woven)
    before, after = captures.before["pkgs"], captures.after["pkgs"]
    assert set(woven.step("backup").depends_on) == {before}
    # The after-task waits for the before-capture too: what it changes is captured first.
    assert set(woven.step("upgrade_packages").depends_on) == {"update_repos", before}
    assert woven.step(after).depends_on == ("upgrade_packages",)
    assert woven.step(before).depends_on == ()
    assert graph.order.index(before) < graph.order.index("upgrade_packages")
    assert woven.step(before).command == capture_script(VERIFY["commands"], MARKER)
    assert captures.labels()[after] == "verification pkgs (capture after)"
    assert with_captures(parse_workflow(_doc()), MARKER)[1].ids == frozenset()


def test_capture_before_a_task_that_depends_on_another_before_task() -> None:
    spec = {**VERIFY, "before_tasks": ["update_repos", "upgrade_packages"]}
    wf = parse_workflow(_doc(verifications={"pkgs": spec}))
    woven, captures = with_captures(wf, MARKER)
    validate(woven)  # no cycle: the capture waits for nothing below the before-tasks
    assert woven.step(captures.before["pkgs"]).depends_on == ()


def test_derived_workflows() -> None:
    wf = parse_workflow(_doc(rollout={"waves": [1], "verification_tasks": ["verify_web"]}))
    check = verification_task_workflow(wf, ["verify_web"])
    assert [s.id for s in check.steps] == ["verify_web"]
    assert check.steps[0].depends_on == () and check.rollout is None
    undo = rollback_workflow(wf, wf.step("upgrade_packages"))
    assert [(s.id, s.command) for s in undo.steps] == [("rollback", "echo undo up")]
    validate(undo)


def test_a_single_command_rolls_out() -> None:
    wf = muster.command_rollout(
        "apt-get -y install openssl",
        "web",
        {"waves": [1, "100%"], "auto_rollback": True},
        rollback="apt-get -y install openssl=1.1",
        timeout=60,
        verifications={"v": {**VERIFY, "before_tasks": ["run"], "after_tasks": ["run"]}},
        windows={"web": "Sun 01:00-03:00"},
    )
    validate(wf)
    assert wf.step("run").rollback == "apt-get -y install openssl=1.1"
    assert wf.rollout is not None and wf.rollout.auto_rollback


def test_builder_makes_the_same_definition_as_yaml() -> None:
    built = muster.MaintenanceWorkflow("os_patching")
    for s in STEPS:
        built.add_task(
            s["id"],
            s["command"],
            targets=[s["targets"]],
            depends_on=s.get("depends_on"),
            rollback=s.get("rollback"),
        )
    built.set_progressive_execution({"groups": [["web1"], ["web"]], "auto_rollback": True})
    built.add_verification("pkgs", VERIFY)
    built.set_maintenance_window({"web": "Sunday 01:00-03:00"})
    text = workflow_to_dict(built.definition())
    import json

    loaded = load_workflow_text(json.dumps(text))
    assert workflow_hash(loaded) == workflow_hash(built.definition())
