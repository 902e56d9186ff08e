"""Start-up benchmark: what ``muster`` costs before it does any work.

Runs ``python -c pass`` (the floor: the same interpreter and site-packages),
``muster --help`` and ``muster run localhost -- true`` N times each, in
interleaved rounds so that load from other processes hits every case alike.
Each child is reaped with ``os.wait4``: CPU is user + system of the child and
of everything it waited for (``true`` included). Reports medians and each
case's difference from, and ratio to, the floor measured in the same run.
Bytecode is cached in a temporary ``PYTHONPYCACHEPREFIX`` (filled by a
warm-up round), as an installed package has it, even where the environment
sets ``PYTHONDONTWRITEBYTECODE``; ``--no-bytecode`` measures compiling every
module from source instead. See bench/README.md.

    uv run python bench/startup.py --runs 20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The console script ``uv run muster`` starts, without uv's own start-up.
MUSTER = str(Path(sys.executable).parent / "muster")
CASES: dict[str, list[str]] = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "muster --help": [MUSTER, "--help"],
    "muster run localhost -- true": [MUSTER, "run", "localhost", "--", "true"],
}
#: The issue-10 budget: a command may add this much wall time to bare Python.
AIM_EXTRA_S = 0.3


@dataclass
class Result:
    case: str
    runs: int
    wall_ms: float
    cpu_ms: float
    extra_wall_ms: float = 0.0
    extra_cpu_ms: float = 0.0
    wall_ratio: float = 1.0
    cpu_ratio: float = 1.0


def once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run; a failing command stops the benchmark."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.stderr is not None
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {err[-500:]}")
    return wall, usage.ru_utime + usage.ru_stime


def measure(runs: int, env: dict[str, str]) -> list[Result]:
    for argv in CASES.values():  # warm-up: bytecode caches and the page cache
        once(argv, env)
    walls: dict[str, list[float]] = {case: [] for case in CASES}
    cpus: dict[str, list[float]] = {case: [] for case in CASES}
    for _ in range(runs):
        for case, argv in CASES.items():
            wall, cpu = once(argv, env)
            walls[case].append(wall)
            cpus[case].append(cpu)
    results = [
        Result(
            case=case,
            runs=runs,
            wall_ms=round(statistics.median(walls[case]) * 1000, 1),
            cpu_ms=round(statistics.median(cpus[case]) * 1000, 1),
        )
        for case in CASES
    ]
    floor = results[0]
    for r in results:
        r.extra_wall_ms = round(r.wall_ms - floor.wall_ms, 1)
        r.extra_cpu_ms = round(r.cpu_ms - floor.cpu_ms, 1)
        r.wall_ratio = round(r.wall_ms / floor.wall_ms, 2) if floor.wall_ms else 0.0
        r.cpu_ratio = round(r.cpu_ms / floor.cpu_ms, 2) if floor.cpu_ms else 0.0
    return results


def table(results: list[Result]) -> str:
    cols = ("case", "wall ms", "CPU ms", "+wall ms", "+CPU ms", "x wall", "x CPU")
    rows = [
        (
            r.case, f"{r.wall_ms:.0f}", f"{r.cpu_ms:.0f}", f"{r.extra_wall_ms:+.0f}",
            f"{r.extra_cpu_ms:+.0f}", f"{r.wall_ratio:.2f}", f"{r.cpu_ratio:.2f}",
        )
        for r in results
    ]  # fmt: skip
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    lines = [
        f"medians of {results[0].runs} runs each; + and x are against `python -c pass`",
        "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)),
    ]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
    over = [r.case for r in results[1:] if r.extra_wall_ms > AIM_EXTRA_S * 1000]
    verdict = f"over the aim: {', '.join(over)}" if over else "all within the aim"
    lines.append(f"aim: at most +{AIM_EXTRA_S * 1000:.0f} ms wall over bare Python ({verdict})")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per case (default 10)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--no-bytecode", action="store_true", help="compile from source every run (no .pyc)"
    )
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100"}
    with tempfile.TemporaryDirectory(prefix="muster-pycache-") as cache:
        if args.no_bytecode:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        else:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = cache
        results = measure(args.runs, env)
    if args.json:
        print(json.dumps({"aim_extra_s": AIM_EXTRA_S, "results": [asdict(r) for r in results]},
                         indent=2))  # fmt: skip
    else:
        print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
