"""Workflow engine benchmarks (issue 13).

Part 1 (this file, in process, no database):

* **validate**: a 10,000-step workflow (a layered DAG: each step depends on up
  to three steps of the layer before, every tenth reads an earlier step's
  output through ``{{step_X.stdout}}``, every 50th is a conditional routing
  to one of two steps) is parsed from plain data and validated; compared with
  the standard library's ``graphlib.TopologicalSorter`` ordering the same
  edges in the same run (the floor: a topological sort and nothing else).
  Seed 004 asks for under 1 s; DESIGN's budget is 100 ms.
* **machine**: the same instance driven through the pure state machine with
  every host step finishing at once (steps/s of the routing logic alone).
* **engine**: N no-op command steps through :class:`WorkflowEngine` with the
  ScriptedTransport (real dispatcher, real rendering, no process), tasks/s.

Part 2 (the durable engine on SQLite and PostgreSQL against the queue's
raw-SQL floor) belongs to the server face.

    uv run python bench/workflow.py                 # 10,000 steps
    uv run python bench/workflow.py --steps 2000 --engine-steps 500 --json
"""

from __future__ import annotations

import argparse
import asyncio
import graphlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from muster.domain.workflows import InstanceState, StepResult, parse_workflow, validate
from muster.domain.workflows.machine import RunStep, Start, StepFinished, advance


def build(steps: int, width: int = 100) -> dict[str, Any]:
    """A layered DAG of ``steps`` steps, ``width`` per layer (each depends on up to
    three of the layer before)."""
    out: list[dict[str, Any]] = []
    for i in range(steps):
        layer, pos = divmod(i, width)
        step: dict[str, Any] = {"id": f"s{i}", "command": "true"}
        if layer:
            base = (layer - 1) * width
            step["depends_on"] = sorted({f"s{base + (pos + k) % width}" for k in range(3)})
        if layer and i % 10 == 0:
            step["command"] = f"echo {{{{step_s{(layer - 1) * width + pos}.stdout}}}}"
        out.append(step)
    # Steps 25, 75, 125... (past the first layer, before the last) become conditionals
    # on a dependency's exit code, routing to the step one layer below them
    # (which also depends on them); no step output is read from a conditional.
    for i in range(width + 25, steps - width, 50):
        cond = out[i]
        cond.pop("command")
        cond["type"] = "conditional"
        layer, pos = divmod(i, width)
        probe = f"s{(layer - 1) * width + (pos + 1) % width}"  # a command step
        cond["condition"] = f"{{{{step_{probe}.exit_code}}}} == 0"
        cond["on_true"] = out[i + width]["id"]
        cond["on_false"] = "end"
    return {"name": "bench", "steps": out}


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median seconds of ``repeat`` runs, and the last result."""
    times = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def bench_validate(steps: int, repeat: int) -> dict[str, Any]:
    data = build(steps)
    parse_s, workflow = timed(lambda: parse_workflow(data), repeat)
    validate_s, graph = timed(lambda: validate(workflow), repeat)
    edges = {s.id: set(s.depends_on) for s in workflow.steps}

    def floor() -> list[str]:
        return list(graphlib.TopologicalSorter(edges).static_order())

    floor_s, order = timed(floor, repeat)
    assert len(order) == len(graph.order) == steps
    total = parse_s + validate_s
    return {
        "steps": steps,
        "parse_ms": round(parse_s * 1000, 2),
        "validate_ms": round(validate_s * 1000, 2),
        "parse_and_validate_ms": round(total * 1000, 2),
        "graphlib_toposort_ms": round(floor_s * 1000, 2),
        "validate_vs_graphlib": round(validate_s / floor_s, 2),
        "under_1s": total < 1.0,
    }


def bench_machine(steps: int) -> dict[str, Any]:
    graph = validate(parse_workflow(build(steps)))
    state = InstanceState.new(graph.order)
    from datetime import UTC, datetime

    from muster.domain.workflows import HostOutcome

    now = datetime.now(UTC)
    results: dict[str, StepResult] = {}
    t0 = time.perf_counter()
    todo = [a for a in advance(graph, state, Start(), now=now) if isinstance(a, RunStep)]
    finished = 0
    while todo:
        action = todo.pop()
        results[action.step_id] = StepResult(
            action.step_id, action.attempt, {"h": HostOutcome("h", "succeeded", 0, "ok\n")}
        )
        event = StepFinished(action.step_id, action.attempt, True)
        todo.extend(
            a
            for a in advance(graph, state, event, now=now, results=results)
            if isinstance(a, RunStep)
        )
        finished += 1
    elapsed = time.perf_counter() - t0
    return {
        "steps": steps,
        "host_steps_run": finished,
        "status": state.status.value,
        "seconds": round(elapsed, 3),
        "steps_per_s": round(finished / elapsed),
    }


class _NoOp:
    """A transport that succeeds at once: what is left is the engine's own cost."""

    async def run_plan(self, host: Any, plan: Any, sink: Any) -> Any:
        from muster.domain.states import HostRunState
        from muster.transports.base import TransportOutcome

        return TransportOutcome(HostRunState.SUCCEEDED, exit_code=0)

    async def close(self) -> None:
        pass


def bench_engine(steps: int) -> dict[str, Any]:
    from muster.domain.hosts import Host, TransportKind
    from muster.engine.workflow import WorkflowEngine
    from muster.testing import InMemoryStore

    # A chain: each step waits for the one before, so every task is one full
    # event cycle (finish, save, route, render, dispatch).
    workflow = parse_workflow(
        {
            "name": "noop",
            "steps": [
                {"id": f"s{i}", "command": "true", **({"depends_on": f"s{i - 1}"} if i else {})}
                for i in range(steps)
            ],
        }
    )

    async def main() -> tuple[float, str]:
        engine = WorkflowEngine(
            {TransportKind.SSH: _NoOp()},  # type: ignore[dict-item]
            [Host("h1")],
            store=InMemoryStore(),
        )
        t0 = time.perf_counter()
        run = await engine.run(workflow)
        elapsed = time.perf_counter() - t0
        await engine.close()
        return elapsed, run.status.value

    elapsed, status = asyncio.run(main())
    return {
        "steps": steps,
        "status": status,
        "seconds": round(elapsed, 3),
        "tasks_per_s": round(steps / elapsed),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--engine-steps", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = {
        "validate": bench_validate(args.steps, args.repeat),
        "machine": bench_machine(args.steps),
        "engine_in_process": bench_engine(args.engine_steps),
    }
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        v, m, e = report["validate"], report["machine"], report["engine_in_process"]
        print(
            f"validate {v['steps']} steps: parse {v['parse_ms']} ms + validate "
            f"{v['validate_ms']} ms = {v['parse_and_validate_ms']} ms "
            f"(graphlib toposort of the same edges {v['graphlib_toposort_ms']} ms; "
            f"validate is {v['validate_vs_graphlib']}x it); under 1 s: {v['under_1s']}"
        )
        print(
            f"state machine: {m['host_steps_run']} host steps in {m['seconds']} s "
            f"= {m['steps_per_s']} steps/s ({m['status']})"
        )
        print(
            f"in-process engine, no-op transport: {e['steps']} steps in {e['seconds']} s "
            f"= {e['tasks_per_s']} tasks/s ({e['status']})"
        )
    return 0 if report["validate"]["under_1s"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
