"""``muster run --waves``: one command rolled out wave by wave, as an operator runs it.

A real ``muster`` process against three real OpenSSH sshd hosts on loopback
(web1, web2, web3; the ``three_ssh_hosts`` fixture of ``muster run``'s own
tests). Every host shares this machine's file system, so each command writes
what it did under the test's directory, named by its host (a command learns
its host from ``MUSTER_RUN_ID``, which ends in ``_ATTEMPT_HOST``), and the
order of events is read back from those files: ``start-HOST`` holds the time
the host's command started, ``log`` the rollbacks in the order they ran.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cli_run import MUSTER, REPO, muster, three_ssh_hosts
from tests.fleet.sshd import SshdServer

__all__ = ["three_ssh_hosts"]  # the fixture, used here by name

pytestmark = pytest.mark.timeout(180)

Fleet = tuple[Path, Path, SshdServer]
#: Sets ``h`` to the host's name (as the run id spells it).
HOST = 'h=$(echo "$MUSTER_RUN_ID" | sed "s/.*_[0-9]*_//")'


def _ssh(fleet: Fleet, key: Path) -> list[str]:
    inventory, known, _ = fleet
    return ["web", "-i", str(inventory), "--key", str(key), "--known-hosts", str(known)]


def _started(d: Path) -> str:
    """The command: record when this host started, then succeed."""
    return f"{HOST}; date +%s.%N > {d}/start-$h"


def _starts(d: Path) -> dict[str, float]:
    return {p.name.removeprefix("start-"): float(p.read_text()) for p in d.glob("start-*")}


def _log(d: Path) -> list[str]:
    path = d / "log"
    return path.read_text().splitlines() if path.exists() else []


def test_waves_run_canary_first_and_in_order(
    three_ssh_hosts: Fleet, fleet_client_key: Path, tmp_path: Path
) -> None:
    proc = muster(
        "run", *_ssh(three_ssh_hosts, fleet_client_key), "--waves", "1,50%,100%",
        "--verify", "true", "--json", "--", _started(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    assert doc["status"] == "succeeded"
    assert [w["hosts"] for w in doc["waves"]] == [["web1"], ["web2"], ["web3"]]
    assert [w["status"] for w in doc["waves"]] == ["succeeded"] * 3
    assert doc["successful_servers"] == ["web1", "web2", "web3"]
    starts = _starts(tmp_path)
    assert starts["web1"] < starts["web2"] < starts["web3"]
    # The progress went to stderr, one line per wave change, in order.
    waves = [line for line in proc.stderr.splitlines() if line.startswith("wave ")]
    assert waves == [
        "wave 1/3 running: 1 host(s): web1",
        "wave 1/3 succeeded: gate passed (0 failed of 1 counted)",
        "wave 2/3 running: 1 host(s): web2",
        "wave 2/3 succeeded: gate passed (0 failed of 1 counted)",
        "wave 3/3 running: 1 host(s): web3",
        "wave 3/3 succeeded: gate passed (0 failed of 1 counted)",
    ]


def test_a_failed_verification_stops_and_rolls_back_newest_wave_first(
    three_ssh_hosts: Fleet, fleet_client_key: Path, tmp_path: Path
) -> None:
    proc = muster(
        "run", *_ssh(three_ssh_hosts, fleet_client_key), "--waves", "1,2,100%",
        "--verify", f'{HOST}; [ "$h" != web2 ]',
        "--rollback", f"{HOST}; echo $h >> {tmp_path}/log",
        "--", _started(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert "wave 1/3 succeeded: gate passed" in out
    assert "wave 2/3 failed: gate failed: verification failed on 1 host(s): web2" in out
    lanes = [line for line in out.splitlines() if line.startswith("rollback   wave")]
    assert lanes == [
        "rollback   wave 2 web2: rolled_back: rolled back run",
        "rollback   wave 1 web1: rolled_back: rolled back run",
    ]
    assert "rollout run rolled_back: stopped at wave 2" in out
    assert _log(tmp_path) == ["web2", "web1"]
    assert sorted(_starts(tmp_path)) == ["web1", "web2"]  # web3 was never touched


@pytest.mark.parametrize("threshold", [None, "1"])
def test_max_failures_decides_whether_a_failed_host_stops_the_rollout(
    three_ssh_hosts: Fleet, fleet_client_key: Path, tmp_path: Path, threshold: str | None
) -> None:
    extra = ["--max-failures", threshold] if threshold is not None else []
    proc = muster(
        "run", *_ssh(three_ssh_hosts, fleet_client_key), "--waves", "1,2,100%", *extra,
        "--json", "--", _started(tmp_path) + '; [ "$h" != web2 ]',
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["failed_servers"] == ["web2"]
    assert doc["waves"][1]["failed_hosts"]["web2"]["reason"] == "command_failed"
    if threshold is None:  # the default, 0: the first failed host stops it
        assert [w["status"] for w in doc["waves"]] == ["succeeded", "failed", "not_run"]
        assert doc["message"].startswith("stopped at wave 2")
        assert "web3" not in _starts(tmp_path)
    else:  # one failed host tolerated: every wave runs
        assert [w["status"] for w in doc["waves"]] == ["succeeded"] * 3
        assert doc["message"] == "every wave ran; 1 host(s) failed within the failure threshold"
        assert sorted(_starts(tmp_path)) == ["web1", "web2", "web3"]
    assert doc["rollback"] == {}


@pytest.mark.parametrize("throttle", [["--forks", "1"], ["--per-group", "1"]])
def test_throttling_holds_inside_a_wave(
    three_ssh_hosts: Fleet, fleet_client_key: Path, tmp_path: Path, throttle: list[str]
) -> None:
    command = _started(tmp_path) + f"; sleep 0.2; date +%s.%N > {tmp_path}/end-$h"
    proc = muster(
        "run", *_ssh(three_ssh_hosts, fleet_client_key), "--waves", "100%", *throttle,
        "--json", "--", command,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    starts = _starts(tmp_path)
    ends = {p.name.removeprefix("end-"): float(p.read_text()) for p in tmp_path.glob("end-*")}
    order = sorted(starts, key=starts.__getitem__)
    assert len(order) == 3
    # One host at a time (all three are in group web): each ended before the next began.
    for before, after in itertools.pairwise(order):
        assert ends[before] <= starts[after]


def test_soak_runs_the_verification_again_before_the_next_wave(
    three_ssh_hosts: Fleet, fleet_client_key: Path, tmp_path: Path
) -> None:
    proc = muster(
        "run", *_ssh(three_ssh_hosts, fleet_client_key), "--waves", "1,100%", "--soak", "1s",
        "--verify", f"{HOST}; echo $h >> {tmp_path}/log", "--json", "--", "true",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    log = _log(tmp_path)
    # The canary is verified after its wave and again after the soak, before wave 2;
    # the last wave has no soak.
    assert log[:2] == ["web1", "web1"]
    assert sorted(log[2:]) == ["web2", "web3"]


def _popen(args: list[str], tmp_path: Path) -> tuple[subprocess.Popen[str], Path, Path]:
    """Start muster with no terminal (stdin from /dev/null), output into files."""
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    with out.open("w") as o, err.open("w") as e:
        proc = subprocess.Popen(
            [*MUSTER, *args], cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=o, stderr=e,
            text=True,
        )  # fmt: skip
    return proc, out, err


def _until(proc: subprocess.Popen[str], ready: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not ready():
        assert proc.poll() is None, f"muster ended before {what}"
        assert time.monotonic() < deadline, f"waited too long for {what}"
        time.sleep(0.05)


def test_sigusr1_pauses_between_waves_and_sigusr2_resumes(
    three_ssh_hosts: Fleet, fleet_client_key: Path, tmp_path: Path
) -> None:
    d = tmp_path / "hosts"
    d.mkdir()
    go = d / "go"
    command = _started(d) + f"; while [ ! -f {go} ]; do sleep 0.05; done"
    proc, out, err = _popen(
        ["run", *_ssh(three_ssh_hosts, fleet_client_key), "--waves", "1,100%", "--json",
         "--", command],
        tmp_path,
    )  # fmt: skip
    try:
        _until(proc, lambda: "web1" in _starts(d), "the canary to start")
        proc.send_signal(signal.SIGUSR1)
        _until(proc, lambda: "SIGUSR1: pausing" in err.read_text(), "the pause")
        go.touch()  # the canary's command may finish; the rollout must hold after it
        _until(proc, lambda: "paused before wave 2" in err.read_text(), "the hold")
        assert sorted(_starts(d)) == ["web1"]
        resumed_at = time.time()
        proc.send_signal(signal.SIGUSR2)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.read_text()
    assert "SIGUSR2: resumed" in err.read_text()
    doc = json.loads(out.read_text())
    assert doc["status"] == "succeeded"
    starts = _starts(d)
    assert sorted(starts) == ["web1", "web2", "web3"]
    # No host of the second wave started while the rollout was paused.
    assert starts["web2"] >= resumed_at and starts["web3"] >= resumed_at


def test_sigint_without_a_terminal_aborts_without_rollback(
    three_ssh_hosts: Fleet, fleet_client_key: Path, tmp_path: Path
) -> None:
    d = tmp_path / "hosts"
    d.mkdir()
    proc, out, err = _popen(
        ["run", *_ssh(three_ssh_hosts, fleet_client_key), "--waves", "1,100%", "--json",
         "--rollback", f"{HOST}; echo $h >> {d}/log", "--", _started(d) + "; sleep 60"],
        tmp_path,
    )  # fmt: skip
    try:
        _until(proc, lambda: "web1" in _starts(d), "the canary to start")
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, err.read_text()
    assert "interrupted: aborting the rollout (no rollback)" in err.read_text()
    doc = json.loads(out.read_text())
    assert doc["status"] == "aborted" and doc["message"] == "aborted (nothing rolled back)"
    assert [w["status"] for w in doc["waves"]] == ["aborted", "not_run"]
    assert doc["rollback"] == {} and _log(d) == []
    assert sorted(_starts(d)) == ["web1"]


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--waves", "0%"], "--waves: wave 1 ('0%'): a percent must be above 0"),
        (["--waves", "1,,100%"], "wave 2 is empty"),
        (["--waves", "50%,10%"], "percents are cumulative: 10% must exceed 50%"),
        (["--waves", "1.5"], "not a whole host count"),
        (["--waves", "1,nosuch"], "wave 2 ('nosuch') selects none of the hosts"),
        (["--waves", "1", "--max-failures", "many"], "--max-failures 'many': not a count"),
        (["--waves", "1", "--max-failures", "100%"], "--max-failures '100%': a percent"),
        (["--waves", "1", "--soak", "soon"], "--soak 'soon': 'soon' is not a duration"),
        (["--waves", "1", "--threshold-scope", "fleet"], "must be 'wave' or 'rollout'"),
        (["--waves", "1", "--auto-rollback"], "--auto-rollback: nothing to roll back with"),
        (["--waves", "1", "--output-dir", "x"], "--output-dir does not apply with --waves"),
        (["--waves", "1", "--stream"], "--stream does not apply with --waves"),
        (["--rollback", "echo undo"], "--rollback applies to a rollout: give --waves too"),
        (["--verify", "true"], "--verify applies to a rollout: give --waves too"),
    ],
)
def test_bad_rollout_input_is_named_and_nothing_runs(
    tmp_path: Path, args: list[str], problem: str
) -> None:
    marker = tmp_path / "ran"
    proc = muster("run", "-i", "examples/inventory.ini", "web", *args, "--", f"touch {marker}")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert problem in " ".join(proc.stderr.split()), proc.stderr
    assert not marker.exists()


def test_dry_run_shows_the_waves_and_sends_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    proc = muster(
        "run", "-i", "examples/inventory.ini", "web", "--waves", "1,50%,100%", "--dry-run",
        "--json", "--rollback", "echo undo", "--", f"touch {marker}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [w["hosts"] for w in doc["waves"]] == [
        ["web1.dc1"],
        ["web2.dc1"],
        ["web1.dc2", "web2.dc2"],
    ]
    assert doc["steps"] == {"run": f"touch {marker}"}
    assert doc["rollback"] == {"run": "echo undo"}
    assert doc["rollout"]["auto_rollback"] is True
    assert not marker.exists()


def test_window_policy_fail_stops_a_wave_outside_its_window(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    closed = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).strftime("%a")
    proc = muster(
        "run", "-i", "examples/inventory.ini", "web", "--waves", "1,100%",
        "--window", f"{closed} 01:00-02:00", "--window-policy", "fail", "--json",
        "--", f"touch {marker}",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "failed"
    assert "outside its maintenance window and the window policy is fail" in doc["message"]
    assert [w["status"] for w in doc["waves"]] == ["failed", "not_run"]
    assert not marker.exists()


def test_a_script_with_parameters_rolls_out_in_waves(tmp_path: Path) -> None:
    proc = muster(
        "run", "-i", "examples/inventory.ini", "web:&dc1", "--script", "examples/patch.sh",
        "--param", f"target_dir={tmp_path}", "--param", "dry_run=false",
        "--waves", "1,100%", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [w["hosts"] for w in doc["waves"]] == [["web1.dc1"], ["web2.dc1"]]
    assert (tmp_path / ".muster-patched").exists()
    bad = muster(
        "run", "-i", "examples/inventory.ini", "web", "--script", "examples/patch.sh",
        "--param", "dry_run=perhaps", "--waves", "1,100%",
    )  # fmt: skip
    assert bad.returncode == 2 and "dry_run" in bad.stderr
