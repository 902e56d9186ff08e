"""Fan-out benchmark: ``echo hi`` on N SSH hosts, controller cost per tool.

Each tool runs in its own child process; its CPU (user + sys of the child
and every descendant it waited for) and peak RSS come from ``os.wait4`` on
that child, so the fleet serving the hosts (a real sshd, or the simulated
fleet in another process) is never counted. See bench/README.md.

    uv run python bench/fanout.py --hosts 1000 --concurrency 100 --fleet sshd
    uv run python bench/fanout.py --fleet sim --hosts 50 --output-size 20MB
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: ``muster`` is the CLI with ``--json``; the other ``muster-*`` CLI rows are its
#: human output: default, ``--output grouped``, ``--output full``, ``--stream``.
HUMAN = {
    "muster-human": [],
    "muster-grouped": ["--output", "grouped"],
    "muster-full": ["--output", "full"],
    "muster-stream": ["--stream"],
}
TOOLS = ("bare", "muster", *HUMAN, "muster-lib", "ansible", "pssh")
DEFAULT_TOOLS = "bare,muster,ansible,pssh"
#: With --output-size: the floor and every way the CLI shows output, in one run.
OUTPUT_TOOLS = "bare,muster,muster-human,muster-grouped,muster-stream"
_UNITS = {"": 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3}


@dataclass
class Fleet:
    """Where the hosts are and how to log in; written to spec.json for children."""

    addresses: list[str]
    port: int
    key: str
    known_hosts: str
    user: str = "root"

    def names(self) -> list[str]:
        return [f"h{i + 1:04d}" for i in range(len(self.addresses))]


@dataclass
class Result:
    tool: str
    wall_s: float
    cpu_s: float
    cpu_ms_per_host: float
    peak_rss_mb: float
    tree_rss_mb: float
    max_procs: int
    hosts_ok: int
    hosts: int
    ratio: float | None = None
    #: What the tool wrote to its stdout (MB).
    printed_mb: float = 0.0
    failures: dict[str, str] = field(default_factory=dict)
    note: str = ""


# -- fleets ------------------------------------------------------------------


def _addresses(base: tuple[int, int], n: int) -> list[str]:
    out: list[str] = []
    i = 1
    while len(out) < n:
        hi, lo = divmod(i, 256)
        if lo not in (0, 255):
            out.append(f"127.{base[0]}.{base[1] + hi}.{lo}")
        i += 1
    return out


def start_sshd_fleet(n: int, workdir: Path) -> tuple[Fleet, Any]:
    """One real OpenSSH sshd on 0.0.0.0 answering 127.88.x.y for every host."""
    sys.path.insert(0, str(ROOT))
    from tests.fleet.sshd import SshdServer, free_port

    port = free_port("0.0.0.0")
    server = SshdServer(listen=[("0.0.0.0", port)], workdir=workdir / "sshd").start()
    addresses = _addresses((88, 0), n)
    known = server.write_known_hosts(workdir / "known_hosts", [(a, port) for a in addresses])
    return Fleet(addresses, port, str(server.client_key), str(known)), server.cleanup


def start_sim_fleet(n: int, workdir: Path) -> tuple[Fleet, Any]:
    """The simulated asyncssh fleet, in its own process (its CPU is not ours)."""
    state = workdir / "sim"
    state.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "muster.testing.simfleet", "--hosts", str(n),
         "--base-address", "127.89.0.1", "--state-dir", str(state)],
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    ready = state / "ready.json"
    deadline = time.monotonic() + 120
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("simulated fleet did not start")
        time.sleep(0.1)  # waiting for another process's ready file, bounded
    info = json.loads(ready.read_text())

    def stop() -> None:
        proc.terminate()
        proc.wait(timeout=30)

    return Fleet(info["addresses"], info["port"], info["client_key"], info["known_hosts"]), stop


def write_inventory(fleet: Fleet, path: Path) -> Path:
    lines = ["[fleet]"]
    for name, addr in zip(fleet.names(), fleet.addresses, strict=True):
        lines.append(
            f"{name} ansible_host={addr} ansible_port={fleet.port} ansible_user={fleet.user}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


# -- measuring a child ---------------------------------------------------------


def _tree(pid: int) -> list[int]:
    found, todo = [pid], [pid]
    while todo:
        current = todo.pop()
        try:
            kids = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        found += [int(k) for k in kids]
        todo += [int(k) for k in kids]
    return found


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(tool: str, argv: list[str], env: dict[str, str], workdir: Path) -> tuple[Result, str]:
    out_path = workdir / f"{tool}.out"
    err_path = workdir / f"{tool}.err"
    peak = {"rss": 0, "procs": 0}
    done = threading.Event()
    start = time.monotonic()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)

        def sample() -> None:
            while not done.wait(0.2):
                pids = _tree(proc.pid)
                peak["procs"] = max(peak["procs"], len(pids))
                peak["rss"] = max(peak["rss"], sum(_rss_kb(p) for p in pids))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - start
        done.set()
        sampler.join()
    cpu = usage.ru_utime + usage.ru_stime
    result = Result(
        tool=tool,
        wall_s=round(wall, 2),
        cpu_s=round(cpu, 3),
        cpu_ms_per_host=0.0,
        peak_rss_mb=round(usage.ru_maxrss / 1024, 1),
        tree_rss_mb=round(peak["rss"] / 1024, 1),
        max_procs=peak["procs"],
        hosts_ok=0,
        hosts=0,
    )
    printed = out_path.stat().st_size
    result.printed_mb = round(printed / 1e6, 2)
    if printed > 100_000_000:  # --stream of a big run: only its closing table is needed
        with out_path.open("rb") as fh:
            fh.seek(printed - 1_000_000)
            text = fh.read().decode(errors="replace")
    else:
        text = out_path.read_text(errors="replace")
    if proc.returncode not in (0, 1, 2, 4):
        result.note = f"exit {proc.returncode}: {err_path.read_text(errors='replace')[-500:]}"
    return result, text


# -- the tools -------------------------------------------------------------------


def parse_size(text: str) -> int:
    """``20MB`` (10**6), ``512KiB`` (2**10), ``100``: bytes."""
    number = text.rstrip("BbKkMmGgIi")
    unit = text[len(number) :].lower()
    if unit not in _UNITS or not number.strip().isdigit():
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 20MB, 512KiB, 1000)")
    return int(number) * _UNITS[unit]


def command(output_bytes: int) -> str:
    """``echo hi``, or a command printing exactly ``output_bytes`` bytes of 80-byte lines
    (a log-like stream: ``--stream`` has lines to cut, grouping has lines to hash)."""
    if not output_bytes:
        return "echo hi"
    line = "muster fan-out benchmark output line, the same on every host, 80 bytes long...."
    assert len(line) == 79
    return f"yes '{line}' | head -c {output_bytes}"


def _child(tool: str, spec: Path) -> list[str]:
    # -P: bench/ is not put on sys.path, so a sibling script named like a
    # standard module (bench/queue.py) cannot shadow it in the child.
    here = str(Path(__file__).resolve())
    return [sys.executable, "-P", here, "--child", tool, "--spec", str(spec)]


def run_tool(
    tool: str, fleet: Fleet, inv: Path, spec: Path, conc: int, workdir: Path, size: int
) -> Result:
    env = dict(os.environ)
    cmd = command(size)
    n = len(fleet.addresses)
    if tool == "muster":
        muster = Path(sys.executable).with_name("muster")
        argv = [str(muster), "run", "-i", str(inv), "*", "--forks", str(conc), "--json",
                "--user", fleet.user, "--key", fleet.key, "--known-hosts", fleet.known_hosts,
                "--", cmd]  # fmt: skip
        result, text = measure(tool, argv, env, workdir)
        ok, failures = _muster_json(text, size)
    elif tool in HUMAN:
        muster = Path(sys.executable).with_name("muster")
        argv = [str(muster), "run", "-i", str(inv), "*", "--forks", str(conc), *HUMAN[tool],
                "--user", fleet.user, "--key", fleet.key, "--known-hosts", fleet.known_hosts,
                "--", cmd]  # fmt: skip
        result, text = measure(tool, argv, env, workdir)
        ok, failures = _muster_human(text, n)
    elif tool == "ansible":
        ansible = shutil.which("ansible") or str(Path(sys.executable).with_name("ansible"))
        env.update(
            ANSIBLE_HOST_KEY_CHECKING="True",
            ANSIBLE_SSH_ARGS=f"-o ControlMaster=no -o UserKnownHostsFile={fleet.known_hosts} "
            "-o StrictHostKeyChecking=yes -o BatchMode=yes",
            ANSIBLE_PRIVATE_KEY_FILE=fleet.key,
            ANSIBLE_LOCAL_TEMP=str(workdir / "ansible-tmp"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_TIMEOUT="60",
            LC_ALL="C.UTF-8",
        )
        argv = [ansible, "all", "-i", str(inv), "-m", "raw", "-a", cmd, "-f", str(conc)]
        result, text = measure(tool, argv, env, workdir)
        ok, failures = _ansible_text(text, fleet)
    else:
        result, text = measure(tool, _child(tool, spec), env, workdir)
        ok, failures = _child_json(text)
    result.hosts, result.hosts_ok, result.failures = n, ok, failures
    result.cpu_ms_per_host = round(result.cpu_s * 1000 / n, 2)
    return result


def _muster_json(text: str, size: int) -> tuple[int, dict[str, str]]:
    try:
        doc = json.loads(text)
    except ValueError:
        return 0, {"*": "no JSON from muster: " + text[-300:]}
    ok = [
        h
        for h in doc["hosts"]
        if h["state"] == "succeeded"
        and (h["stdout_bytes"] == size if size else h["stdout"] == "hi\n")
    ]
    failures = {h["host"]: f"{h['state']}: {h['message']}" for h in doc["hosts"] if h not in ok}
    return len(ok), failures


def _muster_human(text: str, hosts: int) -> tuple[int, dict[str, str]]:
    """Hosts the closing table counts as succeeded (its caption: ``50 succeeded``)."""
    import re

    found = re.findall(r"\b(\d+) succeeded\b", text[-20_000:])
    ok = int(found[-1]) if found else 0
    return ok, {} if ok == hosts else {"*": f"{hosts - ok} hosts not succeeded: {text[-300:]}"}


def _ansible_text(text: str, fleet: Fleet) -> tuple[int, dict[str, str]]:
    ok = sum(1 for line in text.splitlines() if " | CHANGED | rc=0" in line)
    failures = {}
    for line in text.splitlines():
        if " | " in line and "rc=0" not in line and line.split(" | ")[0] in fleet.names():
            failures[line.split(" | ")[0]] = line[:200]
    return ok, failures


def _child_json(text: str) -> tuple[int, dict[str, str]]:
    try:
        doc = json.loads(text.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return 0, {"*": "no result: " + text[-300:]}
    return int(doc["ok"]), dict(doc["failures"])


# -- children: the floor, muster as a library, pssh --------------------------------


async def bare_loop(
    fleet: Fleet, conc: int, on_host: Callable[[Any], Awaitable[str | None]]
) -> dict[str, Any]:
    """The floor every bench compares with: connect, ``on_host(conn)`` (None when
    the host did what it should, else why not), close; at most ``conc`` at once."""
    import asyncssh

    keys = asyncssh.load_keypairs([fleet.key])
    known = asyncssh.read_known_hosts(fleet.known_hosts)
    sem = asyncio.Semaphore(conc)

    async def one(addr: str) -> str | None:
        async with sem:
            try:
                async with asyncssh.connect(
                    addr, fleet.port, username=fleet.user, client_keys=keys,
                    known_hosts=known, config=None,
                ) as conn:  # fmt: skip
                    return await on_host(conn)
            except Exception as exc:
                return repr(exc)

    results = await asyncio.gather(*(one(a) for a in fleet.addresses))
    failures = {a: r for a, r in zip(fleet.addresses, results, strict=True) if r}
    return {"ok": len(results) - len(failures), "failures": failures}


async def _bare(fleet: Fleet, conc: int, size: int) -> dict[str, Any]:
    async def echo(conn: Any) -> str | None:
        r = await conn.run(command(size))
        good = len(r.stdout or "") == size if size else r.stdout == "hi\n"
        return None if r.exit_status == 0 and good else repr(r)[:200]

    return await bare_loop(fleet, conc, echo)


async def _muster_lib(fleet: Fleet, conc: int, size: int) -> dict[str, Any]:
    from muster.domain.executions import Execution
    from muster.domain.hosts import Host, TransportKind
    from muster.domain.plans import Plan
    from muster.engine.dispatcher import Dispatcher, DispatchPolicy
    from muster.transports.ssh import SshTransport

    hosts = [
        Host(name, address=addr, port=fleet.port, user=fleet.user)
        for name, addr in zip(fleet.names(), fleet.addresses, strict=True)
    ]
    transport = SshTransport(known_hosts=fleet.known_hosts, client_keys=[fleet.key])
    execution = Execution.create(id="bench", description="echo hi", hosts=hosts)
    plan = Plan.command(command(size))
    try:
        dispatcher = Dispatcher({TransportKind.SSH: transport}, DispatchPolicy(forks=conc))
        await dispatcher.run(execution, lambda _h: plan, hosts)
    finally:
        await transport.close()
    runs = execution.host_runs.values()
    failures = {
        r.host: f"{r.state.value}: {r.message}"
        for r in runs
        if (r.stdout_bytes != size if size else r.stdout != "hi\n")
    }
    return {"ok": len(runs) - len(failures), "failures": failures}


def _pssh(fleet: Fleet, conc: int, size: int) -> dict[str, Any]:
    from pssh.clients import ParallelSSHClient
    from pssh.config import HostConfig

    configs = [HostConfig(port=fleet.port, user=fleet.user, private_key=fleet.key)] * len(
        fleet.addresses
    )
    client = ParallelSSHClient(
        fleet.addresses, host_config=configs, pool_size=conc, num_retries=1, timeout=60
    )
    output = client.run_command(command(size), stop_on_errors=False)
    client.join(output)
    failures = {}
    for host_out in output:
        if host_out.exception is not None:
            failures[host_out.host] = repr(host_out.exception)
            continue
        lines = list(host_out.stdout or [])
        printed = sum(len(line) + 1 for line in lines)  # lines come without their newline
        if host_out.exit_code != 0 or (
            lines != ["hi"] if not size else printed - size not in (0, 1)
        ):
            failures[host_out.host] = f"exit {host_out.exit_code}: {lines!r}"
    return {"ok": len(fleet.addresses) - len(failures), "failures": failures}


def child_main(tool: str, spec_path: Path) -> None:
    spec = json.loads(spec_path.read_text())
    fleet, conc, size = Fleet(**spec["fleet"]), spec["concurrency"], spec["output_bytes"]
    if tool == "bare":
        doc = asyncio.run(_bare(fleet, conc, size))
    elif tool == "muster-lib":
        doc = asyncio.run(_muster_lib(fleet, conc, size))
    elif tool == "pssh":
        doc = _pssh(fleet, conc, size)
    else:
        raise SystemExit(f"unknown child tool {tool}")
    print(json.dumps(doc))


# -- report ---------------------------------------------------------------------


def available(tool: str) -> str | None:
    """Why ``tool`` cannot run here, or None."""
    if tool == "ansible":
        found = shutil.which("ansible") or Path(sys.executable).with_name("ansible").exists()
        return None if found else "ansible not installed (uv sync --group bench)"
    if tool == "pssh":
        try:
            import pssh  # noqa: F401
        except ImportError:
            return "parallel-ssh not installed (uv sync --group bench)"
    return None


def table(results: list[Result], meta: dict[str, Any]) -> str:
    head = (
        f"{meta['hosts']} hosts, concurrency {meta['concurrency']}, fleet {meta['fleet']}: "
        f"`{meta['command']}` per host\n"
    )
    cols = ("tool", "wall s", "CPU ms/host", "peak RSS MB", "tree RSS MB", "procs", "ok",
            "x floor", "printed MB")  # fmt: skip
    rows = [
        (
            r.tool, f"{r.wall_s:.1f}", f"{r.cpu_ms_per_host:.2f}", f"{r.peak_rss_mb:.0f}",
            f"{r.tree_rss_mb:.0f}", str(r.max_procs), f"{r.hosts_ok}/{r.hosts}",
            "" if r.ratio is None else f"{r.ratio:.2f}", f"{r.printed_mb:g}",
        )
        for r in results
    ]  # fmt: skip
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    lines = [head, "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
    for r in results:
        if r.failures:
            sample = dict(list(r.failures.items())[:3])
            lines.append(f"! {r.tool}: {len(r.failures)} hosts failed, e.g. {sample}")
        if r.note:
            lines.append(f"! {r.tool}: {r.note}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--fleet", choices=("sshd", "sim"), default="sshd")
    parser.add_argument(
        "--tools",
        help=f"comma list of {', '.join(TOOLS)} (default {DEFAULT_TOOLS}; "
        f"with --output-size: {OUTPUT_TOOLS})",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--output-size",
        "--output-bytes",
        dest="output_bytes",
        type=parse_size,
        default=0,
        help="print this much per host instead of 'hi' (20MB, 512KiB, 1000000)",
    )
    parser.add_argument("--child", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.child, args.spec)
        return 0
    default = OUTPUT_TOOLS if args.output_bytes else DEFAULT_TOOLS
    tools = [t for t in (args.tools or default).split(",") if t]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        parser.error(f"unknown tools: {', '.join(sorted(unknown))}")
    workdir = Path(tempfile.mkdtemp(prefix="muster-bench-"))
    start = start_sshd_fleet if args.fleet == "sshd" else start_sim_fleet
    fleet, stop = start(args.hosts, workdir)
    results: list[Result] = []
    skipped: dict[str, str] = {}
    try:
        inv = write_inventory(fleet, workdir / "inventory.ini")
        spec = workdir / "spec.json"
        spec.write_text(
            json.dumps(
                {
                    "fleet": asdict(fleet),
                    "concurrency": args.concurrency,
                    "output_bytes": args.output_bytes,
                }
            )
        )
        for tool in tools:
            why = available(tool)
            if why:
                skipped[tool] = why
                continue
            if not args.json:
                print(f"running {tool} ...", file=sys.stderr, flush=True)
            results.append(
                run_tool(tool, fleet, inv, spec, args.concurrency, workdir, args.output_bytes)
            )
    finally:
        stop()
        shutil.rmtree(workdir, ignore_errors=True)
    floor = next((r for r in results if r.tool == "bare"), None)
    for r in results:
        if floor is not None and floor.cpu_s:
            r.ratio = round(r.cpu_s / floor.cpu_s, 2)
    meta = {
        "hosts": args.hosts,
        "concurrency": args.concurrency,
        "fleet": args.fleet,
        "command": command(args.output_bytes),
    }
    if args.json:
        print(json.dumps({**meta, "results": [asdict(r) for r in results], "skipped": skipped},
                         indent=2))  # fmt: skip
    else:
        print(table(results, meta))
        for tool, why in skipped.items():
            print(f"- {tool} skipped: {why}")
    return 0 if all(r.hosts_ok == r.hosts for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
