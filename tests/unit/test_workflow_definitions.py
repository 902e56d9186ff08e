"""Workflow definitions: parsing (errors name step and field), validation of the graph
and of references, and the round trip through the canonical form."""

from __future__ import annotations

import pytest

from muster.domain.workflows import (
    StepType,
    WorkflowError,
    load_workflow_text,
    parse_workflow,
    validate,
    workflow_hash,
    workflow_to_dict,
)


def wf(steps: list[dict[str, object]], **top: object) -> dict[str, object]:
    return {"name": "t", "steps": steps, **top}


def error_of(data: dict[str, object]) -> WorkflowError:
    with pytest.raises(WorkflowError) as caught:
        validate(parse_workflow(data))
    return caught.value


def test_seed_001_json_reads_as_written() -> None:
    workflow = parse_workflow(
        {
            "name": "deploy",
            "steps": [
                {
                    "id": "approve_deploy",
                    "type": "approval",
                    "title": "Approve production deployment",
                    "approval_type": "one_of_many",
                    "approvers": ["role:admin", "user:5"],
                    "timeout_minutes": 60,
                    "on_success": "check_result",
                    "on_failure": "fail",
                },
                {
                    "id": "check_result",
                    "type": "conditional",
                    "config": {
                        "condition": "{{step_approve_deploy.state}} == 'succeeded'",
                        "on_true": "deploy_step",
                        "on_false": "end",
                    },
                },
                {"id": "deploy_step", "type": "command", "command": "echo deploy"},
            ],
        }
    )
    graph = validate(workflow)
    gate = workflow.step("approve_deploy")
    assert gate.approval is not None
    assert (gate.approval.timeout, gate.approval.title) == (3600.0, "Approve production deployment")
    assert graph.routed == {"check_result", "deploy_step"}


def test_seed_003_yaml_reads_as_written() -> None:
    workflow = load_workflow_text(
        """
name: test
desc_is_not_a_key: no
steps: []
""".replace("desc_is_not_a_key: no\n", "")
        .replace(
            "steps: []",
            """steps:
  - name: shell0-0
    timeout: 2m
    env:
      - {name: Test, value: test_env}
    type: sh
    content: ping -c 4 1.1.1.1
  - name: shell0-1
    depends: [shell0-0]
    type: sh
    content: echo two
""",
        )
        .replace("content: ping", "command: ping")
        .replace("content: echo", "command: echo")
        .replace("shell0-0", "shell0_0")
        .replace("shell0-1", "shell0_1")
    )
    first, second = workflow.steps
    assert first.type is StepType.COMMAND
    assert (first.timeout, dict(first.env)) == (120.0, {"Test": "test_env"})
    assert second.depends_on == ("shell0_0",)


@pytest.mark.parametrize(
    ("data", "step", "field", "words"),
    [
        (wf([{"id": "a", "command": "x", "depend_on": ["b"]}]), "a", "depend_on", "unknown key"),
        (wf([{"id": "a", "type": "teleport"}]), "a", "type", "unknown type"),
        (wf([{"id": "a", "command": ""}]), "a", "command", "required"),
        (wf([{"id": "a", "command": "x", "timeout": "soon"}]), "a", "timeout", "duration"),
        (wf([{"id": "a", "command": "x", "retries": -1}]), "a", "retries", "whole number"),
        (wf([{"id": "a", "type": "approval", "approvers": []}]), "a", "approvers", "approvers"),
        (wf([{"id": "a", "type": "approval", "approvers": ["boss"]}]), "a", "approvers", "boss"),
        (wf([{"id": "a", "type": "delay"}]), "a", "delay", "exactly one"),
        (wf([{"id": "a", "type": "delay", "until": "2030-01-01T00:00"}]), "a", "until", "zone"),
        (wf([{"id": "a", "condition": "{{step_b.stdout}} =="}]), "a", "condition", "ends"),
        (wf([{"id": "a", "command": "x", "env": {"MUSTER_X": "1"}}]), "a", "env", "reserved"),
        (wf([{"id": "a", "command": "x", "throttle": {"forks": 0}}]), "a", "throttle", "forks"),
        (
            wf(
                [
                    {"id": "a", "job": "service_control", "fields": {}},
                ]
            ),
            None,
            None,
            None,
        ),
    ],
)
def test_parse_errors_name_the_step_and_field(
    data: dict[str, object], step: str | None, field: str | None, words: str | None
) -> None:
    if step is None:
        validate(parse_workflow(data))  # a job's fields are checked when it renders
        return
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(data)
    assert caught.value.step == step
    assert caught.value.field == f"steps.{step}.{field}"
    assert f"step '{step}'" in caught.value.message
    assert words in caught.value.message


def test_duplicate_ids_and_bad_ids() -> None:
    dup = wf([{"id": "a", "command": "x"}, {"id": "a", "command": "y"}])
    with pytest.raises(WorkflowError, match="used twice"):
        parse_workflow(dup)
    with pytest.raises(WorkflowError, match="must start with a letter"):
        parse_workflow(wf([{"id": "1a", "command": "x"}]))


def test_cycle_through_dependencies_and_routes_is_named() -> None:
    err = error_of(
        wf(
            [
                {"id": "a", "command": "x", "on_success": "b"},
                {"id": "b", "command": "x", "depends_on": ["c"]},
                {"id": "c", "command": "x", "depends_on": ["b"]},
                {"id": "d", "command": "x"},
            ]
        )
    )
    assert "cycle" in err.message
    assert "b -> c -> b" in err.message or "c -> b -> c" in err.message


def test_unknown_steps_in_routes_and_dependencies() -> None:
    err = error_of(wf([{"id": "a", "command": "x", "on_failure": "rollbak"}]))
    assert (err.step, err.field) == ("a", "steps.a.on_failure")
    assert "rollbak" in err.message
    err = error_of(wf([{"id": "a", "command": "x", "depends_on": "nope"}]))
    assert err.field == "steps.a.depends_on"


def test_unreachable_steps_are_rejected() -> None:
    # b is routed to only from c, and c only from b: neither can ever start.
    err = error_of(
        wf(
            [
                {"id": "a", "command": "x"},
                {"id": "b", "command": "x", "on_success": "c"},
                {"id": "c", "command": "x", "on_failure": "b"},
            ]
        )
    )
    assert "cycle" in err.message or "unreachable" in err.message
    err = error_of(
        wf(
            [
                {"id": "a", "command": "x", "on_success": "b"},
                {"id": "b", "command": "x"},
                # c runs only when orphan fails, but needs orphan to succeed
                {"id": "c", "command": "x", "depends_on": "orphan"},
                {"id": "orphan", "command": "x", "on_failure": "c"},
            ]
        )
    )
    assert (err.step, "unreachable") == ("c", "unreachable")
    assert "unreachable" in err.message


def test_a_step_only_a_dead_step_routes_to_is_unreachable() -> None:
    err = error_of(
        wf(
            [
                {"id": "start", "command": "x", "on_success": "end"},
                {"id": "dead", "command": "x", "depends_on": "ghost", "on_success": "tail"},
                {"id": "ghost", "command": "x", "on_failure": "dead"},
                {"id": "tail", "command": "x"},
            ]
        )
    )
    assert "unreachable" in err.message


def test_references_must_name_an_earlier_step_with_output() -> None:
    err = error_of(
        wf([{"id": "a", "command": "echo {{step_b.stdout}}"}, {"id": "b", "command": "x"}])
    )
    assert (err.step, err.field) == ("a", "steps.a.command")
    assert "cannot have run before" in err.message
    err = error_of(wf([{"id": "a", "command": "echo {{step_zz.stdout}}"}]))
    assert "unknown step" in err.message
    err = error_of(
        wf(
            [
                {"id": "gate", "type": "approval", "approvers": ["user:x"], "on_success": "b"},
                {"id": "b", "command": "echo {{step_gate.stdout}}"},
            ]
        )
    )
    assert "only .state" in err.message
    ok = validate(
        parse_workflow(
            wf(
                [
                    {"id": "a", "command": "x", "on_failure": "b"},
                    {"id": "b", "command": "echo {{step_a.stderr}} {{step_a.hosts.web1.x.stdout}}"},
                    {"id": "c", "command": "echo {{step_a.json.k.n}}", "depends_on": "b"},
                ]
            )
        )
    )
    assert ok.order[0] == "a"


def test_unknown_parameters_are_rejected_everywhere() -> None:
    for step in (
        {"id": "a", "command": "echo {{params.nope}}"},
        {"id": "a", "command": "x", "env": {"X": "{{params.nope}}"}},
        {"id": "a", "command": "x", "targets": "{{params.nope}}"},
        {"id": "a", "condition": "{{params.nope}} == 1", "on_true": "end"},
        {"id": "a", "type": "approval", "approvers": ["user:x"], "title": "{{params.nope}}"},
    ):
        err = error_of(wf([step], parameters=[{"name": "known"}]))
        assert "unknown parameter 'nope'" in err.message, step


def test_round_trip_through_the_canonical_form() -> None:
    text = """
name: everything
description: all types
parameters: [{name: env, type: choice, choices: [prod, test], default: test}]
env: {A: "1"}
targets: web
throttle: {max_parallel_servers: 5, delay_between_servers: 2s}
steps:
  - {id: c, command: "echo {{params.env}}", shell: bash, retries: 2, retry_delay: 1}
  - {id: s, script: deploy, version: 3, parameters: {x: "{{step_c.stdout}}"}, depends_on: c}
  - {id: i, body: "echo inline", shell: zsh, idempotent: true}
  - {id: j, job: service_control, fields: {service: nginx, action: restart}}
  - {id: ap, type: approval, approval: {policy: two_of_many, approvers: [role:ops], timeout: 10m}}
  - {id: q, condition: "{{step_c.exit_code}} == 0", on_true: d, on_false: fail, depends_on: c}
  - {id: d, type: delay, delay: 1m}
  - {id: u, type: delay, until: "2030-01-01T02:00:00+01:00"}
"""
    workflow = load_workflow_text(text)
    validate(workflow)
    again = parse_workflow(workflow_to_dict(workflow))
    assert workflow_to_dict(again) == workflow_to_dict(workflow)
    assert workflow_hash(again) == workflow_hash(workflow)
    assert workflow.throttle.forks == 5 and workflow.throttle.delay == 2.0
    assert workflow.step("u").delay is not None
    assert workflow.step("u").delay.until is not None
    assert workflow.step("u").delay.until.hour == 1


def test_bad_yaml_names_the_line() -> None:
    with pytest.raises(WorkflowError, match=r"at line \d+, column \d+: expected ','"):
        load_workflow_text("name: x\nsteps:\n  - {id: a, command: 'x'\n")
