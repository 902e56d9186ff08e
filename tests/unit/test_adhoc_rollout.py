"""``muster run --waves`` options read into the one rollout model: the same waves and
thresholds a workflow's ``rollout:`` accepts, errors named by option, and the
generated one-task workflow the rollout engine runs."""

from __future__ import annotations

import pytest

from muster.domain.rollout_spec import Threshold, ThresholdScope, WaveSpec
from muster.domain.workflows import StepType, validate
from muster.domain.workflows.adhoc import (
    RUN_STEP,
    VERIFY_STEP,
    AdhocRollout,
    AdhocTask,
    adhoc_workflow,
    wave_items,
)
from muster.errors import ValidationError


@pytest.mark.parametrize(
    ("text", "items"),
    [
        ("1,10%,50%,100%", [1, "10%", "50%", "100%"]),
        (" canary , web,100% ", ["canary", "web", "100%"]),
        ("web*,db:&dc1", ["web*", "db:&dc1"]),
        ('[[web01, web02], db, "100%"]', [["web01", "web02"], "db", "100%"]),
    ],
)
def test_wave_lists_read_as_the_rollout_key_holds_them(text: str, items: list[object]) -> None:
    assert wave_items(text) == items


def test_the_spec_is_what_the_options_say() -> None:
    spec = AdhocRollout(
        "canary,50%,100%",
        max_failures="10%",
        threshold_scope="rollout",
        soak="2m",
        verify="curl -fs localhost/health",
        rollback="echo undo",
    ).spec()
    assert spec.waves == (
        WaveSpec(selectors=("canary",)),
        WaveSpec(percent=50.0),
        WaveSpec(percent=100.0),
    )
    assert spec.failure_threshold == Threshold(count=None, percent=10.0)
    assert spec.threshold_scope is ThresholdScope.ROLLOUT
    assert spec.soak == 120.0
    assert spec.verification_tasks == (VERIFY_STEP,)
    assert spec.auto_rollback is True  # on by default once there is a way back


def test_auto_rollback_follows_the_flag_and_defaults_off_without_a_rollback() -> None:
    assert AdhocRollout("1", rollback="undo", auto_rollback=False).spec().auto_rollback is False
    plain = AdhocRollout("1").spec()
    assert plain.auto_rollback is False and plain.failure_threshold == Threshold()
    assert plain.verification_tasks == () and plain.soak == 0.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (AdhocRollout(""), "--waves: give at least one wave"),
        (AdhocRollout("0%"), "--waves: wave 1 ('0%'): a percent must be above 0 and at most 100"),
        (AdhocRollout("1,0"), "--waves: wave 2 (0): a host count must be at least 1"),
        (AdhocRollout("2,1"), "--waves: wave 2 (1): host counts are cumulative: 1 must exceed 2"),
        (AdhocRollout("1,,5"), "--waves '1,,5': wave 2 is empty"),
        (AdhocRollout("-3"), "--waves: wave 1 (-3): a host count must be at least 1"),
        (AdhocRollout("2.5"), "wave 1 ('2.5') is not a whole host count"),
        (AdhocRollout("[1, "), "not a YAML list"),
        (AdhocRollout("1", max_failures="lots"), "--max-failures 'lots': not a count"),
        (AdhocRollout("1", max_failures="-1"), "--max-failures '-1': a count cannot be negative"),
        (AdhocRollout("1", threshold_scope="x"), "--threshold-scope 'x': must be 'wave' or"),
        (AdhocRollout("1", soak="-5s"), "--soak '-5s':"),
        (AdhocRollout("1", auto_rollback=True), "--auto-rollback: nothing to roll back with"),
    ],
)
def test_bad_options_are_named_by_option(options: AdhocRollout, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        options.spec()
    assert message in caught.value.message
    assert "rollout." not in caught.value.message  # the YAML key is not what was typed


def test_a_command_becomes_one_run_step_gated_by_verify() -> None:
    workflow = adhoc_workflow(
        AdhocTask(command="systemctl restart nginx", timeout=60),
        AdhocRollout("1,100%", verify="curl -fs localhost", rollback="systemctl stop nginx",
                     windows={"*": "Sun 01:00-03:00"}),
    )  # fmt: skip
    validate(workflow)
    run, verify = workflow.steps
    assert (run.id, run.type, run.command) == (
        RUN_STEP,
        StepType.COMMAND,
        "systemctl restart nginx",
    )
    assert run.rollback == "systemctl stop nginx" and run.timeout == 60
    assert (verify.id, verify.command, verify.depends_on) == (
        VERIFY_STEP,
        "curl -fs localhost",
        (RUN_STEP,),
    )
    assert verify.rollback is None
    assert workflow.targets == "*" and workflow.windows == {"*": "Sun 01:00-03:00"}
    assert workflow.rollout is not None and workflow.rollout.verification_tasks == (VERIFY_STEP,)


def test_a_script_step_names_the_script_and_carries_its_parameters() -> None:
    workflow = adhoc_workflow(
        AdhocTask(script="patch", shell="bash", timeout=120, parameters={"level": "2"}),
        AdhocRollout("50%,100%"),
    )
    (run,) = workflow.steps
    assert run.type is StepType.SCRIPT and run.script is not None
    assert (run.script.name, run.script.body) == ("patch", None)
    assert dict(run.parameters) == {"level": "2"}


def test_a_bad_window_is_named_as_a_window() -> None:
    with pytest.raises(ValidationError, match="maintenance window"):
        adhoc_workflow(AdhocTask(command="true"), AdhocRollout("1", windows={"*": "Someday"}))
