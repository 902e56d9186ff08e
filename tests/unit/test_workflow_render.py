"""Rendering a host step (pure): references by host, quoting by context, secrets only
in the environment, hosts without a value failed alone."""

from __future__ import annotations

import pytest

from muster.domain.hosts import Host
from muster.domain.params import coerce_values
from muster.domain.secret import Secret
from muster.domain.workflows import (
    HostOutcome,
    StepResult,
    WorkflowError,
    load_workflow_text,
    validate,
)
from muster.domain.workflows.render import PREVIEW, prepare_step, render_host_inputs

GRAPH = validate(
    load_workflow_text(
        """
name: r
parameters: [{name: token, type: secret}, {name: who, default: "a b"}]
steps:
  - {id: a, command: "true"}
  - id: b
    depends_on: a
    shell: bash
    env: {TOKEN_AGAIN: "{{params.token}}", MIXED: "x-{{params.who}}"}
    command: |
      echo {{step_a.stdout}} "in {{step_a.stdout}}" 'sq {{step_a.stdout}}' {{params.token}}
"""
    )
)
PARAMS = coerce_values(GRAPH.workflow.parameters, {"token": "tok-secret"})
HOSTS = [Host("h1"), Host("h2"), Host("h3")]


def results(*hosts: str) -> dict[str, StepResult]:
    outcomes = {h: HostOutcome(h, "succeeded", 0, f"$(touch {h}) '\"\n") for h in hosts}
    return {"a": StepResult("a", 1, outcomes)}


def test_each_host_reads_its_own_result_quoted_for_its_context() -> None:
    launch = prepare_step(
        GRAPH, "b", 1, hosts=HOSTS[:2], params=PARAMS, results=results("h1", "h2"), run_prefix="t"
    )
    assert launch.problems == {}
    body = launch.bodies["h1"]
    assert "tok-secret" not in body
    assert "'$(touch h1) '\\''\"'" in body  # plain word: single-quoted
    assert '"in $(touch h1) \'\\"' not in body  # never raw inside double quotes
    assert '"in \\$(touch h1) \'\\""' in body  # escaped inside double quotes
    assert "'sq $(touch h1) '\\''\"'" in body  # inside single quotes: leave and re-enter
    env = launch.plans["h1"].env
    assert isinstance(env["MUSTER_PARAM_TOKEN"], Secret)
    assert isinstance(env["TOKEN_AGAIN"], Secret)
    assert env["MIXED"] == "x-a b"
    assert "h2" in launch.bodies["h2"] and "h1" not in launch.bodies["h2"]


def test_a_host_without_a_value_fails_alone() -> None:
    launch = prepare_step(
        GRAPH, "b", 1, hosts=HOSTS, params=PARAMS, results=results("h1", "h2"), run_prefix="t"
    )
    assert set(launch.plans) == {"h1", "h2"}
    assert "no result on host h3" in launch.problems["h3"]


def test_one_host_result_serves_every_host() -> None:
    inputs = render_host_inputs(GRAPH, "b", "h3", params=PARAMS, results=results("h1"))
    assert inputs.command is not None and "touch h1" in inputs.command


def test_a_secret_cannot_be_spliced_into_text() -> None:
    graph = validate(
        load_workflow_text(
            """
name: s
parameters: [{name: token, type: secret}]
steps:
  - {id: a, command: "true", env: {BAD: "Bearer {{params.token}}"}}
"""
        )
    )
    values = coerce_values(graph.workflow.parameters, {"token": "t"})
    with pytest.raises(WorkflowError, match="whole value"):
        prepare_step(graph, "a", 1, hosts=HOSTS[:1], params=values, results={}, run_prefix="t")


def test_preview_shows_placeholders_quoted_like_values() -> None:
    launch = prepare_step(
        GRAPH, "b", 1, hosts=HOSTS[:1], params=PARAMS, results=PREVIEW, run_prefix="t"
    )
    assert "'<step_a.stdout>'" in launch.bodies["h1"]


def test_preview_lists_every_step_with_hosts_waits_and_masked_env() -> None:
    from muster.domain.inventory import Inventory
    from muster.domain.workflows.preview import preview_workflow

    graph = validate(
        load_workflow_text(
            """
name: p
parameters: [{name: token, type: secret}]
throttle: {forks: 2}
steps:
  - {id: a, targets: web, command: "echo {{params.token}}", shell: zsh}
  - {id: gate, type: approval, approvers: ["user:x"], timeout_minutes: 5, depends_on: a,
     on_success: later}
  - {id: later, type: delay, seconds: 30, on_success: named}
  - {id: named, targets: web, script: lib_script}
  - {id: untargeted, command: "true"}
  - {id: nowhere, targets: nosuch, command: "true"}
"""
        )
    )
    inv = Inventory()
    inv.add_host(Host("w1", groups=("web",), shells=("zsh", "sh")))
    inv.add_host(Host("w2", groups=("web",), shells=("sh",)))
    values = coerce_values(graph.workflow.parameters, {"token": "tok-secret"})
    steps = {s.id: s for s in preview_workflow(graph, inv, values)}
    a = steps["a"]
    assert a.hosts == ("w1", "w2") and a.shell == "zsh" and a.throttle["forks"] == 2
    assert "zsh" in a.skipped["w2"]
    assert list(a.bodies) == ["w1"]
    assert "tok-secret" not in str(a.to_dict())
    assert a.env["MUSTER_PARAM_TOKEN"] == "***"
    assert any("approval (one_of_many) by user:x" in w for w in steps["gate"].waits_for)
    assert "delay 30s" in steps["later"].waits_for
    assert steps["named"].problem is not None and "resolved" in steps["named"].problem
    assert steps["nowhere"].problem == "its targets match no host"
    assert "has no targets" in (steps["untargeted"].problem or "")


def test_approval_titles_read_parameters_and_results_as_text() -> None:
    from muster.domain.workflows.render import approval_title

    graph = validate(
        load_workflow_text(
            """
name: t
parameters: [{name: env}, {name: token, type: secret}]
steps:
  - {id: scan, command: "true"}
  - {id: gate, type: approval, approvers: ["user:x"], depends_on: scan,
     title: "deploy to {{params.env}}? scan said {{step_scan.stdout}} ({{params.token}})"}
"""
        )
    )
    values = coerce_values(graph.workflow.parameters, {"env": "prod", "token": "tok"})
    scan = {"scan": StepResult("scan", 1, {"h1": HostOutcome("h1", "succeeded", 0, "clean\n")})}
    title = approval_title(graph, "gate", params=values, results=scan)
    assert title == "deploy to prod? scan said clean (***)"
