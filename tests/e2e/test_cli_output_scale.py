"""``muster run``'s default human output at fleet scale (issue 16): 50 simulated SSH
hosts each printing 20 MB, through the real CLI in its own process. It used to
print each host's output through Rich's highlighter and never finished; now it
must end, with memory that does not grow with the output (1 GB in all), at
about the cost of the same run with ``--json`` (measured in the same test).

The fleet runs in another process (its memory and CPU are not the CLI's); the
CLI's resident set is sampled from /proc while it runs, and its CPU is read
from the rusage of the reaped child.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

MUSTER = str(Path(sys.executable).parent / "muster")
HOSTS = 50
SIZE = 20_000_000
#: Generous: the same run with --json takes seconds; the old output never ended.
ENDS_WITHIN = 300
#: Flat memory: the output is 1,000 MB; the CLI holds its budget (64 MiB) plus Python.
RSS_LIMIT_MB = 300


@pytest.fixture
def sim_fleet(tmp_path: Path) -> Iterator[dict[str, object]]:
    state = tmp_path / "fleet"
    state.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "muster.testing.simfleet", "--hosts", str(HOSTS),
         "--base-address", "127.79.0.1", "--state-dir", str(state)],
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        ready = state / "ready.json"
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None, "the simulated fleet exited"
            assert time.monotonic() < deadline, "the simulated fleet did not start"
            time.sleep(0.1)  # another process's ready file; bounded above
        yield json.loads(ready.read_text())
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class _Run:
    """One CLI process: how it ended, what it printed, its peak RSS and CPU."""

    returncode: int
    stdout: str
    stderr: str
    peak_rss_mb: float
    cpu_s: float


def _run_cli(args: list[str], out_path: Path) -> _Run:
    """``muster ARGS`` with stdout to a file, its RSS sampled from /proc while it runs
    and its CPU (user + system) taken from the rusage of reaped children."""
    env = {**os.environ, "COLUMNS": "120"}
    peak = [0.0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with out_path.open("wb") as out:
        proc = subprocess.Popen(
            [MUSTER, *args], stdout=out, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env
        )
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.1):
                peak[0] = max(peak[0], _rss_mb(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            _, stderr = proc.communicate(timeout=ENDS_WITHIN)
        finally:
            stop.set()
            sampler.join()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    text = out_path.read_text()
    return _Run(proc.returncode, text, stderr.decode("utf-8", "replace"), peak[0], cpu)


def test_fifty_hosts_printing_20_mb_each_end_with_flat_memory(
    sim_fleet: dict[str, object], tmp_path: Path
) -> None:
    addresses = sim_fleet["addresses"]
    assert isinstance(addresses, list)
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        "".join(
            f"sim{i:02d} ansible_host={a} ansible_port={sim_fleet['port']} ansible_user=root\n"
            for i, a in enumerate(addresses)
        )
    )
    # Every host prints 20 MB of short lines; the hosts whose name ends in 7
    # also fail, so the grouped output has two groups.
    # MUSTER_SIM_HOST is the simulated fleet's own name for the host (sim0001...).
    command = (
        f"yes 'a line of [bold]output[/] \033[31mred\033[0m' | head -c {SIZE}; "
        'case "$MUSTER_SIM_HOST" in *7) echo disk full >&2; exit 3;; esac'
    )
    common = ["run", "-i", str(inventory), "*", "--key", str(sim_fleet["client_key"]),
              "--known-hosts", str(sim_fleet["known_hosts"])]  # fmt: skip
    human = _run_cli([*common, "--", command], tmp_path / "human.txt")
    # The same run with --json, in the same fleet and test: the cost to compare with.
    as_json = _run_cli([*common, "--json", "--", command], tmp_path / "json.txt")

    for name, run in (("human", human), ("json", as_json)):  # shown with pytest -s
        print(f"{name}: {run.cpu_s:.1f} s CPU, {run.peak_rss_mb:.0f} MB peak RSS")
    text = human.stdout
    assert human.returncode == 1, human.stderr[-2000:] + text[-2000:]
    assert as_json.returncode == 1, as_json.stderr[-2000:]
    assert human.peak_rss_mb > 0, "the CLI's memory was never sampled"
    assert human.peak_rss_mb < RSS_LIMIT_MB, f"peak RSS {human.peak_rss_mb:.0f} MB"
    # Flat: the human output holds no more than the JSON document's run does.
    assert human.peak_rss_mb < as_json.peak_rss_mb + 50, (human.peak_rss_mb, as_json.peak_rss_mb)
    # About what --json costs: both read the same gigabyte; generous for a shared machine.
    assert human.cpu_s < 3 * as_json.cpu_s + 10, (human.cpu_s, as_json.cpu_s)
    assert len(text) < 200_000, "the terminal got more than the stated cap per host"
    # Two groups, largest first, each printed once with its hosts listed.
    assert "=== 45 hosts: SUCCEEDED" in text, text[:3000]
    assert "=== 5 hosts: FAILED, exit 3, 'disk full'" in text, text[:3000]
    assert text.count("[muster: stdout cut at 100 lines") == 2
    assert "of 19.1 MiB (the same on every host of the group)" in text
    # Host output is plain text: the markup is printed as is, the colour
    # escape is not passed to a file (no terminal), nothing else was interpreted.
    assert "a line of [bold]output[/] red" in text
    assert "\033" not in text.split("execution failed")[0]
    assert "45 succeeded" in text and "5 failed" in text
    doc = json.loads(as_json.stdout)
    assert sorted(h["state"] for h in doc["hosts"]).count("failed") == 5
