"""What only the in-process faces do: named scripts from a library the caller
hands in, and the engine's observer."""

from __future__ import annotations

import pytest

from muster.domain.hosts import Host, TransportKind
from muster.domain.params import ParameterSpec
from muster.domain.scripts import Script, ScriptVersion, Shell
from muster.domain.workflows import WorkflowError
from muster.engine.workflow import WorkflowEngine, library_resolver
from muster.errors import NotFoundError
from muster.testing import InMemoryStore
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
