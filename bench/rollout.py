"""Progressive rollout benchmark: waves of 1, 10%, 50%, 100% on N real SSH hosts.

Three children run against the same real sshd fleet (bench/fanout.py's), one
after the other, each measured with ``os.wait4`` (CPU and peak RSS of the
child only; the fleet is another process tree):

- ``bare``: the floor, a minimal asyncssh loop doing per host what the
  workflow does (capture, apply, capture, verify) over one connection;
- ``flat``: the seed-004 library face (``muster.Engine(...).execute``), the
  same workflow with no rollout: one wave of everything;
- ``rollout``: the same workflow in waves of 1, 10%, 50%, 100% with the
  verification task and the before/after verification gating each wave.

    uv run python bench/rollout.py --hosts 1000 --concurrency 100
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TOOLS = ("bare", "flat", "rollout")
WAVES = [1, "10%", "50%", "100%"]


def _fanout() -> Any:
    """bench/fanout.py by path: its fleet, its child measuring and its Result."""
    spec = importlib.util.spec_from_file_location("bench_fanout", HERE / "fanout.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_fanout"] = module
    spec.loader.exec_module(module)
    return module


fanout = _fanout()


# -- the stand-in change -------------------------------------------------------------


def commands(state: str) -> dict[str, str]:
    """Harmless stand-ins: each host's "package version" is a file in its own dir
    (the host is told apart by the server address in ``$SSH_CONNECTION``)."""
    me = f'set -- $SSH_CONNECTION; d={state}/$3; mkdir -p "$d"'
    return {
        "capture": f'{me}; cat "$d/version" 2>/dev/null || echo "pkg 1.0.0"',
        "apply": f'{me}; echo "pkg 1.0.1" > "$d/version"',
        "rollback": f'{me}; echo "pkg 1.0.0" > "$d/version"',
        "verify": f'{me}; grep -q "pkg 1.0.1" "$d/version"',
    }


def workflow(state: str, conc: int, *, rollout: bool) -> Any:
    import muster

    cmd = commands(state)
    wf = muster.MaintenanceWorkflow("bench_rollout")
    wf.add_task("apply", cmd["apply"], targets=["*"], rollback=cmd["rollback"])
    wf.add_task("verify", cmd["verify"], targets=["*"], depends_on=["apply"])
    wf.add_verification(
        "pkg_version",
        {
            "before_tasks": ["apply"],
            "after_tasks": ["apply"],
            "commands": {"version": cmd["capture"]},
            "comparisons": {
                "version": {
                    "type": "regex_match",
                    "pattern": r"pkg (\S+)",
                    "expected_change": "version_increase",
                }
            },
        },
    )
    wf.set_parallelization({"max_parallel_servers": conc})
    if rollout:
        wf.set_progressive_execution(
            {"waves": WAVES, "verification_tasks": ["verify"], "auto_rollback": True}
        )
    return wf


# -- children --------------------------------------------------------------------------


async def _bare(fleet: Any, conc: int, state: str) -> dict[str, Any]:
    cmd = commands(state)

    async def patch(conn: Any) -> str | None:
        before = (await conn.run(cmd["capture"])).stdout
        await conn.run(cmd["apply"], check=True)
        after = (await conn.run(cmd["capture"])).stdout
        verified = await conn.run(cmd["verify"])
        good = before != after and verified.exit_status == 0
        return None if good else f"before {before!r} after {after!r}"

    return await fanout.bare_loop(fleet, conc, patch)


def _engine(fleet: Any) -> Any:
    import muster
    from muster.domain.hosts import Host

    inventory = muster.Inventory()
    for name, addr in zip(fleet.names(), fleet.addresses, strict=True):
        inventory.add_host(Host(name, address=addr, port=fleet.port, user=fleet.user,
                                shells=("sh",)))  # fmt: skip
    auth = muster.SSHAuth.from_keyfile(
        fleet.key, username=fleet.user, known_hosts=fleet.known_hosts
    )
    return muster.Engine(inventory, auth)


def _muster(fleet: Any, conc: int, state: str, *, rollout: bool) -> dict[str, Any]:
    engine = _engine(fleet)
    started = time.monotonic()
    result = engine.execute(workflow(state, conc, rollout=rollout))
    wall = time.monotonic() - started
    evidence = result.verification_results.get("pkg_version", {})
    bad = {h: "verification failed" for h, ev in evidence.items() if not ev.passed}
    failures = {h: w.failed_hosts[h].detail for w in result.waves for h in w.failed_hosts}
    failures.update(bad)
    # A host's verification is what gates its wave once the change is made: the
    # after-capture, the comparison with the before-capture, and the verification
    # task. The SSH commands are timed by the engine on that host (connection
    # set-up, shell, command); the comparison itself is pure and takes
    # microseconds (bench/verification.py), so it is not added.
    steps: dict[str, dict[str, float]] = {}
    for run in result.runs.values():
        for sid, step in run.results.items():
            for host, outcome in step.hosts.items():
                steps.setdefault(sid, {})[host] = outcome.duration or 0.0
    per_host: dict[str, float] = {}
    for sid in ("verify1_after", "verify"):
        for host, took in steps.get(sid, {}).items():
            per_host[host] = per_host.get(host, 0.0) + took
    times = sorted(per_host.values())
    step_stats = {
        sid: {
            "median_s": round(statistics.median(v.values()), 3),
            "max_s": round(max(v.values()), 3),
        }
        for sid, v in steps.items()
        if v
    }
    waves = [
        {
            "hosts": len(w.hosts),
            "status": w.status.value,
            "seconds": None if w.duration is None else round(w.duration, 2),
        }
        for w in result.waves
    ]
    return {
        "ok": len(fleet.addresses) - len(failures),
        "failures": failures,
        "status": result.status if isinstance(result.status, str) else result.status.value,
        "engine_wall_s": round(wall, 2),
        "waves": waves,
        "verification_hosts": len(times),
        "verification_median_s": round(statistics.median(times), 3) if times else None,
        "verification_max_s": round(times[-1], 3) if times else None,
        "steps": step_stats,
    }


def child_main(tool: str, spec_path: Path) -> None:
    spec = json.loads(spec_path.read_text())
    fleet = fanout.Fleet(**spec["fleet"])
    conc, state = spec["concurrency"], spec["state"]
    if tool == "bare":
        doc = asyncio.run(_bare(fleet, conc, state))
    else:
        doc = _muster(fleet, conc, state, rollout=tool == "rollout")
    print(json.dumps(doc))


# -- report ------------------------------------------------------------------------------


def run_tool(tool: str, fleet: Any, spec: Path, workdir: Path, state: Path) -> tuple[Any, dict]:
    shutil.rmtree(state, ignore_errors=True)  # every tool starts from version 1.0.0
    state.mkdir()
    argv = [sys.executable, "-P", str(Path(__file__).resolve()), "--child", tool,
            "--spec", str(spec)]  # fmt: skip
    result, text = fanout.measure(tool, argv, dict(os.environ), workdir)
    try:
        doc = json.loads(text.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        doc = {"ok": 0, "failures": {"*": f"no result: {text[-300:]!r} {result.note}"}}
    n = len(fleet.addresses)
    result.hosts, result.hosts_ok, result.failures = n, doc["ok"], doc["failures"]
    result.cpu_ms_per_host = round(result.cpu_s * 1000 / n, 2)
    return result, doc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.child, args.spec)
        return 0
    tools = [t for t in args.tools.split(",") if t]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        parser.error(f"unknown tools: {', '.join(sorted(unknown))}")
    workdir = Path(tempfile.mkdtemp(prefix="muster-bench-rollout-"))
    state = workdir / "state"
    fleet, stop = fanout.start_sshd_fleet(args.hosts, workdir)
    results: list[Any] = []
    docs: dict[str, dict[str, Any]] = {}
    try:
        spec = workdir / "spec.json"
        spec.write_text(json.dumps({"fleet": asdict(fleet), "concurrency": args.concurrency,
                                    "state": str(state)}))  # fmt: skip
        for tool in tools:
            if not args.json:
                print(f"running {tool} ...", file=sys.stderr, flush=True)
            result, doc = run_tool(tool, fleet, spec, workdir, state)
            results.append(result)
            docs[tool] = doc
    finally:
        stop()
        shutil.rmtree(workdir, ignore_errors=True)
    floor = next((r for r in results if r.tool == "bare"), None)
    for r in results:
        if floor is not None and floor.cpu_s:
            r.ratio = round(r.cpu_s / floor.cpu_s, 2)
    flat = next((r for r in results if r.tool == "flat"), None)
    roll = next((r for r in results if r.tool == "rollout"), None)
    meta = {
        "hosts": args.hosts,
        "concurrency": args.concurrency,
        "fleet": "sshd",
        "command": "capture, apply, capture, verify (stand-ins)",
        "waves": WAVES,
        "rollout_over_flat_wall": (
            round(roll.wall_s / flat.wall_s, 2) if roll and flat and flat.wall_s else None
        ),
    }
    if args.json:
        print(json.dumps({**meta, "results": [asdict(r) for r in results], "details": docs},
                         indent=2))  # fmt: skip
    else:
        print(fanout.table(results, meta))
        print(f"rollout / flat wall time: {meta['rollout_over_flat_wall']}")
        for tool in ("flat", "rollout"):
            d = docs.get(tool)
            if d and "status" in d:
                print(
                    f"{tool}: status {d['status']}, waves "
                    f"{[(w['hosts'], w['status'], w['seconds']) for w in d['waves']]}, "
                    f"verification per host median {d['verification_median_s']} s, "
                    f"max {d['verification_max_s']} s over {d['verification_hosts']} hosts"
                )
                print(f"  per step (median/max s): {d['steps']}")
    return 0 if all(r.hosts_ok == r.hosts for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
