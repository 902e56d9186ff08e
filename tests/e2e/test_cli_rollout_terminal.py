"""Ctrl-C on a terminal: an in-process rollout pauses and asks what to do.

``muster run --waves`` runs with its stdin on a pseudo-terminal (as an
operator's shell gives it), against three real sshd hosts. The test sends
SIGINT as the terminal's Ctrl-C does and answers the prompt by typing into the
terminal; what the hosts did is read back from the files they write.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from muster.cli.rollout_control import PROMPT
from tests.e2e.test_cli_run import MUSTER, REPO, three_ssh_hosts
from tests.e2e.test_cli_run_waves import HOST, Fleet, _log, _ssh, _started, _starts, _until

__all__ = ["three_ssh_hosts"]  # the fixture, used here by name

pytestmark = pytest.mark.timeout(180)


class Terminal:
    """muster with a pseudo-terminal for stdin; stdout and stderr go to files."""

    def __init__(self, args: list[str], tmp_path: Path) -> None:
        self.out, self.err = tmp_path / "stdout", tmp_path / "stderr"
        self._master, slave = pty.openpty()
        env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
        with self.out.open("w") as o, self.err.open("w") as e:
            self.proc = subprocess.Popen(
                [*MUSTER, *args], cwd=REPO, env=env, stdin=slave, stdout=o, stderr=e, text=True
            )
        os.close(slave)

    def ctrl_c(self) -> None:
        self.proc.send_signal(signal.SIGINT)

    def type(self, line: str) -> None:
        os.write(self._master, line.encode() + b"\n")

    def said(self, text: str) -> bool:
        return text in self.err.read_text()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self._master)


@pytest.fixture
def hosts_dir(tmp_path: Path) -> Path:
    d = tmp_path / "hosts"
    d.mkdir()
    return d


@pytest.fixture
def terminal(
    three_ssh_hosts: Fleet, fleet_client_key: Path, tmp_path: Path, hosts_dir: Path
) -> Iterator[Terminal]:
    go = hosts_dir / "go"
    command = _started(hosts_dir) + f"; while [ ! -f {go} ]; do sleep 0.05; done"
    args = [
        "run", *_ssh(three_ssh_hosts, fleet_client_key), "--waves", "1,100%", "--json",
        "--rollback", f"{HOST}; echo $h >> {hosts_dir}/log", "--", command,
    ]  # fmt: skip
    term = Terminal(args, tmp_path)
    try:
        _until(term.proc, lambda: "web1" in _starts(hosts_dir), "the canary to start")
        yield term
    finally:
        term.close()


def _result(term: Terminal) -> dict[str, object]:
    term.proc.wait(timeout=120)
    doc: dict[str, object] = json.loads(term.out.read_text())
    return doc


def test_ctrl_c_pauses_and_asks_and_r_resumes(terminal: Terminal, hosts_dir: Path) -> None:
    terminal.ctrl_c()
    _until(terminal.proc, lambda: terminal.said(PROMPT), "the prompt")
    assert terminal.said("Ctrl-C: pausing")
    (hosts_dir / "go").touch()
    _until(terminal.proc, lambda: terminal.said("paused before wave 2"), "the hold")
    assert sorted(_starts(hosts_dir)) == ["web1"]
    terminal.type("r")
    doc = _result(terminal)
    assert terminal.proc.returncode == 0, terminal.err.read_text()
    assert doc["status"] == "succeeded"
    assert sorted(_starts(hosts_dir)) == ["web1", "web2", "web3"]
    assert _log(hosts_dir) == []


def test_answering_b_aborts_then_rolls_back(terminal: Terminal, hosts_dir: Path) -> None:
    terminal.ctrl_c()
    _until(terminal.proc, lambda: terminal.said(PROMPT), "the prompt")
    (hosts_dir / "go").touch()
    _until(terminal.proc, lambda: terminal.said("paused before wave 2"), "the hold")
    terminal.type("b")
    doc = _result(terminal)
    assert terminal.proc.returncode == 1
    assert terminal.said("rollback: aborting the rollout (then rolling back)")
    assert doc["status"] == "rolled_back"
    assert list(doc["rollback"]) == ["web1"]  # type: ignore[call-overload]
    assert _log(hosts_dir) == ["web1"]
    assert sorted(_starts(hosts_dir)) == ["web1"]  # wave 2 never started


def test_a_second_ctrl_c_while_paused_aborts_without_rollback(
    terminal: Terminal, hosts_dir: Path
) -> None:
    terminal.ctrl_c()
    _until(terminal.proc, lambda: terminal.said(PROMPT), "the prompt")
    terminal.ctrl_c()
    doc = _result(terminal)
    assert terminal.proc.returncode == 1
    assert terminal.said("second Ctrl-C: aborting the rollout (no rollback)")
    assert doc["status"] == "aborted" and doc["rollback"] == {}
    assert _log(hosts_dir) == [] and sorted(_starts(hosts_dir)) == ["web1"]
