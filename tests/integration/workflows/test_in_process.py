"""What only the in-process faces do: named scripts from a library the caller
hands in, and the engine's observer."""

from __future__ import annotations

import pytest

from muster.domain.hosts import Host, TransportKind
from muster.domain.params import ParameterSpec
from muster.domain.scripts import Script, ScriptVersion, Shell
from muster.domain.workflows import WorkflowError
from muster.engine.workflow import WorkflowEngine, library_resolver
from muster.errors import ConflictError, NotFoundError, PermissionDeniedError
from muster.testing import FakeClock, InMemoryStore
from muster.transports.local import LocalTransport


def _library() -> Script:
    script = Script("greet")
    for body in ("printf 'v1 %s' ${who}", "printf 'v2 %s' ${who}"):
        script.save(ScriptVersion("greet", Shell.BASH, body, parameters=(ParameterSpec("who"),)))
    return script


async def test_named_script_steps_pin_versions_and_take_parameters_from_earlier_steps() -> None:
    script = _library()
    observed: list[tuple[str, str]] = []
    engine = WorkflowEngine(
        {TransportKind.LOCAL: LocalTransport()},
        [Host("h1", transport=TransportKind.LOCAL)],
        store=InMemoryStore(),
        scripts=library_resolver([script]),
        observer=lambda _id, state, moved: observed.extend(
            (sid, state.steps[sid].status.value) for sid in sorted(moved)
        ),
    )
    first_hash = script.get(1).content_hash
    run = await engine.run(
        f"""
name: named
steps:
  - {{id: name, command: 'echo "O''Brien; \\$(id)"'}}
  - {{id: latest, script: greet, parameters: {{who: "{{{{step_name.stdout}}}}"}}, depends_on: name}}
  - {{id: pinned, script: greet, version: 1, parameters: {{who: x}}}}
  - {{id: by_hash, script: greet, hash: "{first_hash[:16]}", parameters: {{who: y}}}}
"""
    )
    with pytest.raises(WorkflowError, match="step 'missing': no script 'nope'"):
        await engine.start("name: m\nsteps:\n  - {id: missing, script: nope}\n")
    await engine.close()
    assert run.steps["latest"].status.value == "succeeded", run.steps["latest"].message
    assert run.stdout("latest", "h1") == "v2 O'Brien; $(id)"
    assert run.stdout("pinned", "h1") == "v1 x"
    assert run.stdout("by_hash", "h1") == "v1 y"
    assert ("latest", "running") in observed and ("latest", "succeeded") in observed


def test_library_resolver_refuses_short_or_unknown_hashes() -> None:
    from muster.domain.workflows import ScriptRef

    resolve = library_resolver([_library()])
    with pytest.raises(NotFoundError):
        resolve(ScriptRef(name="greet", hash="ab"))
    with pytest.raises(NotFoundError):
        resolve(ScriptRef(name="greet", version=3))


def _clocked(clock: FakeClock, **kwargs: object) -> WorkflowEngine:
    return WorkflowEngine(
        {TransportKind.LOCAL: LocalTransport()},
        [Host("h1", transport=TransportKind.LOCAL)],
        store=InMemoryStore(clock=clock),
        clock=clock,
        timers=False,
        **kwargs,  # type: ignore[arg-type]
    )


APPROVAL = """
name: gate
steps:
  - id: gate
    type: approval
    approval: {{policy: {policy}, approvers: {approvers}, timeout: 1h}}
    on_success: go
    on_failure: stop
  - {{id: go, command: "echo go"}}
  - {{id: stop, command: "echo stop"}}
"""


async def test_two_of_many_needs_two_votes_and_refuses_the_requester_and_strangers() -> None:
    engine = _clocked(FakeClock())
    iid = await engine.start(
        APPROVAL.format(policy="two_of_many", approvers='["role:ops"]'), created_by="carol"
    )
    with pytest.raises(PermissionDeniedError):
        await engine.approve(iid, "gate", "carol", roles=["ops"])  # the requester
    with pytest.raises(PermissionDeniedError):
        await engine.approve(iid, "gate", "mallory", roles=["dev"])
    first = await engine.approve(iid, "gate", "alice", roles=["ops"])
    assert first.status.value == "pending"
    assert engine.get(iid).steps["gate"].status.value == "waiting"
    await engine.approve(iid, "gate", "bob", roles=["ops"])
    run = await engine.wait(iid, timeout=30)
    assert (run.steps["go"].status.value, run.steps["stop"].status.value) == (
        "succeeded",
        "skipped",
    )
    assert "alice, bob" in run.steps["gate"].message
    await engine.close()


async def test_deadline_pause_for_and_operator_decisions_on_a_fake_clock() -> None:
    clock = FakeClock()
    engine = _clocked(clock)
    iid = await engine.start(APPROVAL.format(policy="one_of_many", approvers='["user:alice"]'))
    clock.advance(3599)
    await engine.tick(iid)
    assert engine.get(iid).steps["gate"].status.value == "waiting"
    clock.advance(1)
    await engine.tick(iid)  # the deadline has passed: rejected, failure route
    run = await engine.wait(iid, timeout=30)
    assert run.steps["gate"].status.value == "failed"
    assert run.steps["stop"].status.value == "succeeded"
    assert engine.pending_approvals(iid) == {}

    iid = await engine.start(APPROVAL.format(policy="singular", approvers='["user:alice"]'))
    await engine.pause_for(iid, 300)
    await engine.settle_approval(iid, "gate", True, "operator")
    assert engine.get(iid).status.value == "paused"  # go waits for the pause to end
    clock.advance(300)
    await engine.tick(iid)
    run = await engine.wait(iid, timeout=30)
    assert run.steps["go"].status.value == "succeeded"
    assert run.steps["gate"].message == "approved by operator (operator of a local run)"
    with pytest.raises(ConflictError):
        await engine.settle_approval(iid, "gate", False, "operator")
    await engine.close()


async def test_close_kills_what_still_runs() -> None:
    engine = _clocked(FakeClock())
    iid = await engine.start("name: long\nsteps:\n  - {id: s, command: 'sleep 60'}\n")
    await engine.wait_for(iid, lambda s: s.steps["s"].status.value == "running")
    await engine.close()
    assert engine.get(iid).status.value == "killed"
