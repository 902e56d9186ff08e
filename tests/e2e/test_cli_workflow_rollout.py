"""``muster workflow run|forecast`` on a workflow with a rollout, as an operator runs
them: a real process, the shipped example definition, local hosts from the example
inventory and real OpenSSH sshd hosts on loopback.

The example's stand-in "upgrade" raises openssl's version in a file per host under
the ``state`` parameter; a ``broken-HOST`` file there makes it go down instead,
which the package verification catches.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cli_run import MUSTER, REPO, muster, three_ssh_hosts
from tests.fleet.sshd import SshdServer

__all__ = ["three_ssh_hosts"]  # the fixture, used here by name

pytestmark = pytest.mark.timeout(180)

EXAMPLE = REPO / "examples" / "workflows" / "rollout_patching.yaml"
INVENTORY = REPO / "examples" / "inventory.ini"
LOCAL_WAVES = [["web1.dc1"], ["web2.dc1", "web1.dc2"], ["web2.dc2", "db1.dc1", "db1.dc2"]]


def _run(state: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return muster(
        "workflow", "run", str(EXAMPLE), "-i", str(INVENTORY), "-p", f"state={state}", *extra
    )


def _versions(state: Path) -> dict[str, str]:
    return {p.name.removeprefix("pkgs-"): p.read_text().split()[-1] for p in state.glob("pkgs-*")}


def test_green_rollout_runs_wave_by_wave_and_exits_0(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    proc = _run(tmp_path, "--report", str(report))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    lines = [line for line in out.splitlines() if line.startswith("wave ")]
    assert lines == [
        "wave 1/3 running: 1 host(s): web1.dc1",
        "wave 1/3 succeeded: gate passed (0 failed of 1 counted)",
        "wave 2/3 running: 2 host(s): web2.dc1, web1.dc2",
        "wave 2/3 succeeded: gate passed (0 failed of 2 counted)",
        "wave 3/3 running: 3 host(s): web2.dc2, db1.dc1, db1.dc2",
        "wave 3/3 succeeded: gate passed (0 failed of 3 counted)",
    ]
    assert "rollout rollout_patching succeeded: 3 wave(s), 6 host(s) succeeded" in out
    assert "failed servers (0): -" in out
    assert "verification package_versions: passed (6 host(s))" in out
    assert "rollback" not in out
    assert set(_versions(tmp_path).values()) == {"3.0.12-1"}
    doc = json.loads(report.read_text())
    assert doc["status"] == "succeeded"
    assert [w["hosts"] for w in doc["waves"]] == LOCAL_WAVES
    assert doc["evidence"]["passed"] is True
    assert doc["evidence"]["summary"]["hosts"] == 6


def test_verification_failure_rolls_back_newest_wave_first_over_ssh(
    three_ssh_hosts: tuple[Path, Path, SshdServer], fleet_client_key: Path, tmp_path: Path
) -> None:
    inventory, known, _ = three_ssh_hosts
    state = tmp_path / "state"
    state.mkdir()
    (state / "broken-web2").touch()
    report = tmp_path / "report.json"
    ssh = ["--key", str(fleet_client_key), "--known-hosts", str(known)]
    proc = muster(
        "workflow", "run", str(EXAMPLE), "-i", str(inventory), "-p", f"state={state}",
        *ssh, "--report", str(report),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert "wave 1/3 succeeded: gate passed" in out
    assert "wave 2/3 failed: gate failed: verification failed on 1 host(s): web2" in out
    assert "failed web2: verification_failed: verification package_versions" in out
    assert "wave 3/3" not in out.split("rollout rollout_patching")[0]
    lanes = [line for line in out.splitlines() if line.startswith("rollback   wave")]
    assert lanes == [
        "rollback   wave 2 web2: rolled_back: rolled back upgrade_packages, backup",
        "rollback   wave 1 web1: rolled_back: rolled back upgrade_packages, backup",
    ]
    assert "rollout rollout_patching rolled_back: stopped at wave 2" in out
    assert "rolled back (2), newest wave first: web2, web1" in out
    assert "successful servers (1): web1" in out and "failed servers (1): web2" in out
    # The hosts' package files are back to what they were; web3 was never touched.
    assert _versions(state) == {"web1": "3.0.11-1", "web2": "3.0.11-1"}

    doc = json.loads(report.read_text())
    assert doc["status"] == "rolled_back"
    assert [w["status"] for w in doc["waves"]] == ["rolled_back", "rolled_back", "not_run"]
    assert list(doc["rollback"]) == ["web2", "web1"]
    assert [doc["rollback"][h]["wave"] for h in ("web2", "web1")] == [1, 0]
    assert doc["failed_servers"] == ["web2"] and doc["flagged_hosts"] == []
    assert doc["waves"][1]["failed_hosts"]["web2"]["reason"] == "verification_failed"
    evidence = doc["evidence"]["verifications"]["package_versions"]
    assert evidence["passed"] is False and evidence["failed_hosts"] == ["web2"]
    web2 = evidence["hosts"]["web2"]
    assert web2["before"]["openssl"].strip() == "ii  openssl 3.0.11-1"
    assert web2["after"]["openssl"].strip() == "ii  openssl 3.0.10-1"
    check = web2["checks"][0]
    assert (check["before_value"], check["after_value"], check["passed"]) == (
        "3.0.11-1",
        "3.0.10-1",
        False,
    )
    assert evidence["hosts"]["web1"]["passed"] is True
    assert doc["evidence"]["hosts"]["web2"] == {
        "passed": False,
        "verifications": {"package_versions": False},
        "drift": {},
    }


def test_json_result_on_stdout_and_progress_on_stderr(tmp_path: Path) -> None:
    (tmp_path / "broken-web1_dc1").touch()
    proc = _run(tmp_path, "--json")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "rolled_back"
    assert doc["failed_servers"] == ["web1.dc1"] and doc["successful_servers"] == []
    assert list(doc["rollback"]) == ["web1.dc1"]
    assert [w["status"] for w in doc["waves"]] == ["rolled_back", "not_run", "not_run"]
    ev = doc["verification_results"]["package_versions"]["web1.dc1"]
    assert ev["passed"] is False and ev["after"]["openssl"].strip() == "ii  openssl 3.0.10-1"
    assert "wave 1/3 failed" in proc.stderr


def _ctrl_c_definition(tmp_path: Path) -> Path:
    path = tmp_path / "slow.yaml"
    started = tmp_path / "started"
    path.write_text(
        "name: slow\n"
        "steps:\n"
        f"  - {{id: work, targets: '*', command: 'touch {started}; sleep 60',"
        " rollback: 'echo undo'}\n"
        "rollout: {waves: [1, '100%'], auto_rollback: true}\n"
    )
    return path


def test_ctrl_c_aborts_without_rollback_and_says_so(tmp_path: Path) -> None:
    path = _ctrl_c_definition(tmp_path)
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [*MUSTER, "workflow", "run", str(path), "-i", str(INVENTORY), "--json"],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,  # no terminal: Ctrl-C aborts rather than pausing to ask
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "started").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the first wave never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, err
    assert "aborting the rollout (no rollback)" in err
    doc = json.loads(out)
    assert doc["status"] == "aborted"
    assert doc["message"] == "aborted (nothing rolled back)"
    assert doc["rollback"] == {}
    assert [w["status"] for w in doc["waves"]] == ["aborted", "not_run"]
    assert doc["successful_servers"] == []


def _windows_definition(tmp_path: Path, windows: dict[str, str]) -> Path:
    path = tmp_path / "windows.yaml"
    lines = "".join(f"  {sel}: '{spec}'\n" for sel, spec in windows.items())
    path.write_text(
        "name: windowed\n"
        "steps:\n"
        "  - {id: patch, targets: '*', command: echo patched}\n"
        "rollout: {waves: [[web], [db]], wave_duration: 10m}\n"
        f"windows:\n{lines}"
    )
    return path


def _iso(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%MZ")


def test_forecast_shows_when_each_wave_runs_and_which_will_not_fit(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    opens = now + dt.timedelta(days=2)
    path = _windows_definition(
        tmp_path,
        {
            "web": f"{_iso(opens)}/{_iso(opens + dt.timedelta(hours=1))}",
            # Only a window too short for the wave's 10 minutes: it will never fit.
            "db": f"{_iso(opens)}/{_iso(opens + dt.timedelta(minutes=5))}",
        },
    )
    proc = muster("workflow", "forecast", str(path), "-i", str(INVENTORY), "--json")
    assert proc.returncode == 1, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    web, db = doc["waves"]
    assert web["hosts"] == ["web1.dc1", "web2.dc1", "web1.dc2", "web2.dc2"]
    assert web["status"] == "waits"
    assert dt.datetime.fromisoformat(web["starts_at"]) == opens
    assert "closed now" in web["reason"]
    assert db["status"] == "will_not_fit" and db["starts_at"] is None
    assert doc["will_not_fit"] == [2]

    human = muster("workflow", "forecast", str(path), "-i", str(INVENTORY), "--days", "5")
    assert human.returncode == 1
    assert f"{opens:%Y-%m-%d %H:%M} UTC" in human.stdout
    assert "will not fit" in human.stdout
    assert "1 wave(s) will not fit within 5 day(s): 2" in human.stderr

    # Looking only one day ahead, the web wave does not fit either.
    short = muster("workflow", "forecast", str(path), "-i", str(INVENTORY), "--days", "1")
    assert short.returncode == 1
    assert "2 wave(s) will not fit within 1 day(s): 1, 2" in short.stderr


def test_forecast_of_the_example_fits_now(tmp_path: Path) -> None:
    proc = muster("workflow", "forecast", str(EXAMPLE), "-i", str(INVENTORY), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [w["hosts"] for w in doc["waves"]] == LOCAL_WAVES
    assert doc["will_not_fit"] == []
    assert [w["status"] for w in doc["waves"]] == ["now"] * 3


def test_bad_input_is_named(tmp_path: Path) -> None:
    missing = muster("workflow", "run", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nsteps:\n  - {id: a, targets: '*', command: echo}\nrollout: {waves: []}\n"
    )
    for command in ("run", "forecast"):
        proc = muster("workflow", command, str(bad), "-i", str(INVENTORY))
        assert proc.returncode == 2, proc.stdout
        assert "rollout.waves" in proc.stderr

    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(
        "name: u\nsteps:\n  - {id: a, targets: nosuchgroup, command: echo}\n"
        "rollout: {waves: ['100%']}\n"
    )
    proc = muster("workflow", "run", str(unknown), "-i", str(INVENTORY))
    assert proc.returncode == 2 and "nosuchgroup" in proc.stderr, proc.stderr

    unwritable = tmp_path / "no-such-dir" / "report.json"
    proc = _run(tmp_path, "--report", str(unwritable))
    assert proc.returncode == 2 and "--report" in proc.stderr and "cannot write" in proc.stderr
    assert not list(tmp_path.glob("pkgs-*"))  # nothing ran

    approval = tmp_path / "approval.yaml"
    approval.write_text(
        "name: ap\nsteps:\n  - {id: ok, type: approval, approvers: ['user:ops']}\n"
        "  - {id: a, targets: '*', command: echo, depends_on: [ok]}\n"
        "rollout: {waves: ['100%']}\n"
    )
    proc = muster("workflow", "run", str(approval), "-i", str(INVENTORY), "--approve", "a")
    assert proc.returncode == 2 and "--approve a: no approval step of that id" in proc.stderr

    plain = tmp_path / "plain.yaml"
    plain.write_text("name: p\nsteps:\n  - {id: a, targets: localhost, command: echo}\n")
    proc = muster("workflow", "run", str(plain), "--report", str(tmp_path / "r.json"))
    assert proc.returncode == 2 and "has no rollout:" in proc.stderr


def test_a_wave_waits_for_its_window_visibly_then_runs(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    # Far enough ahead that the CLI is surely up before the window opens.
    opens, closes = now + dt.timedelta(seconds=8), now + dt.timedelta(minutes=10)
    marker = tmp_path / "ran"
    path = tmp_path / "held.yaml"
    path.write_text(
        "name: held\n"
        "steps:\n"
        f"  - {{id: patch, targets: web1.dc1, command: 'date -u +%s > {marker}'}}\n"
        "rollout: {waves: ['100%'], wave_duration: 1s}\n"
        f"windows:\n  web: '{opens:%Y-%m-%dT%H:%M:%SZ}/{closes:%Y-%m-%dT%H:%M:%SZ}'\n"
    )
    proc = muster("workflow", "run", str(path), "-i", str(INVENTORY))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    waiting = next(i for i, line in enumerate(lines) if "waiting_window" in line)
    running = next(i for i, line in enumerate(lines) if line.startswith("wave 1/1 running"))
    assert waiting < running
    assert f"until {opens:%Y-%m-%d %H:%M} UTC" in lines[waiting]
    assert "closed now" in lines[waiting]
    # Nothing ran before the window opened.
    assert int(marker.read_text()) >= int(opens.timestamp())
