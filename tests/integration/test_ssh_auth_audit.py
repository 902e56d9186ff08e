"""Seed 004's library face against a real OpenSSH sshd: ``Engine(inventory,
SSHAuth.from_keyfile/from_agent/from_credential(...)).execute(workflow)`` logs in
exactly as told, and every host run (library or ``muster run``) lands in a local
audit file whose chain ``muster audit verify-file`` checks."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

import muster
from muster.config import Settings
from muster.domain.hosts import Host
from muster.domain.inventory import Inventory
from muster.domain.secret import Secret
from muster.engine.local_audit import verify_file
from muster.engine.rollout_result import RolloutStatus
from muster.store.sqlalchemy_store import open_store
from tests.fleet.sshd import SshdServer, generate_key

pytestmark = pytest.mark.timeout(120)

MUSTER = str(Path(sys.executable).parent / "muster")


@pytest.fixture(autouse=True)
def _no_agent_no_home_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No key can come from the user's agent or ~/.ssh: only the one under test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


def _inventory(server: SshdServer) -> Inventory:
    addr, port = server.listen[0]
    inv = Inventory()
    inv.add_host(Host("web1", address=addr, port=port, user="root", groups=("web",)))
    return inv


def _workflow() -> muster.MaintenanceWorkflow:
    wf = muster.MaintenanceWorkflow("audit_me")
    wf.add_task("hello", "echo hello-from-$(id -un)", targets=["web"])
    return wf


def _ran(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_keyfile_engine_run_writes_a_verifiable_chain(
    sshd_loopback: SshdServer, loopback_known_hosts: Path, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    auth = muster.SSHAuth.from_keyfile(sshd_loopback.client_key, known_hosts=loopback_known_hosts)
    result = muster.Engine(_inventory(sshd_loopback), auth, audit=audit).execute(_workflow())
    assert result.status is RolloutStatus.SUCCEEDED, result
    assert "hello-from-root" in result.task_results["hello"].hosts["web1"].stdout
    rows = _ran(audit)
    assert [r["action"] for r in rows] == ["host.run.start", "host.run.end"]
    assert rows[1]["target"] == "web1" and rows[1]["details"]["exit_code"] == 0  # type: ignore[index]
    assert "echo hello-from-$(id -un)" in json.dumps(rows[0]["details"])
    assert verify_file(audit).ok


def test_keyfile_uses_only_that_key_never_the_agents(
    sshd_loopback: SshdServer,
    loopback_known_hosts: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agent = _Agent(tmp_path)
    try:
        agent.add(sshd_loopback.client_key)  # the agent could log in...
        monkeypatch.setenv("SSH_AUTH_SOCK", str(agent.sock))
        other = tmp_path / "other_ed25519"
        generate_key(other)  # ...but the key file named is not authorised
        auth = muster.SSHAuth.from_keyfile(other, known_hosts=loopback_known_hosts)
        result = muster.Engine(_inventory(sshd_loopback), auth, audit=False).execute(_workflow())
        host = result.task_results["hello"].hosts["web1"]
        assert result.status is not RolloutStatus.SUCCEEDED
        assert host.reason == "auth_failed", host
    finally:
        agent.stop()


def test_an_encrypted_key_file_logs_in_with_its_passphrase(
    sshd_loopback: SshdServer, loopback_known_hosts: Path, tmp_path: Path
) -> None:
    key = asyncssh.read_private_key(sshd_loopback.client_key)
    enc = tmp_path / "enc_key"
    # PKCS#8: OpenSSH's own encrypted format needs bcrypt, not installed here.
    enc.write_bytes(key.export_private_key("pkcs8-pem", "open sesame"))
    enc.chmod(0o600)
    auth = muster.SSHAuth.from_keyfile(
        enc, passphrase="open sesame", known_hosts=loopback_known_hosts
    )
    result = muster.Engine(_inventory(sshd_loopback), auth, audit=False).execute(_workflow())
    assert result.status is RolloutStatus.SUCCEEDED


class _Agent:
    """A real ssh-agent on a socket of its own (killed by pid when done)."""

    def __init__(self, tmp_path: Path) -> None:
        if shutil.which("ssh-agent") is None or shutil.which("ssh-add") is None:
            pytest.skip("ssh-agent/ssh-add not installed (openssh-client)")
        self.sock = tmp_path / "agent.sock"
        self.proc = subprocess.Popen(
            ["ssh-agent", "-D", "-a", str(self.sock)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.sock.exists():
            assert time.monotonic() < deadline, "ssh-agent did not create its socket"
            time.sleep(0.02)

    def add(self, key: Path) -> None:
        subprocess.run(
            ["ssh-add", str(key)],
            env={**os.environ, "SSH_AUTH_SOCK": str(self.sock)},
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[_Agent]:
    a = _Agent(tmp_path)
    try:
        yield a
    finally:
        a.stop()


def test_from_agent_logs_in_with_the_agents_key(
    sshd_loopback: SshdServer, loopback_known_hosts: Path, agent: _Agent, tmp_path: Path
) -> None:
    auth = muster.SSHAuth.from_agent(agent.sock, known_hosts=loopback_known_hosts)
    inv = _inventory(sshd_loopback)
    empty = muster.Engine(inv, auth, audit=False).execute(_workflow())
    assert empty.task_results["hello"].hosts["web1"].reason == "auth_failed"
    agent.add(sshd_loopback.client_key)
    audit = tmp_path / "audit.jsonl"
    result = muster.Engine(inv, auth, audit=audit).execute(_workflow())
    assert result.status is RolloutStatus.SUCCEEDED
    assert verify_file(audit).ok and verify_file(audit).checked == 2


def test_from_credential_logs_in_with_the_vaults_key(
    sshd_loopback: SshdServer, loopback_known_hosts: Path, tmp_path: Path
) -> None:
    store = open_store(Settings(data_dir=tmp_path / "data"), open_vault=True, create_key=True)
    try:
        store.create_credential(
            "deploy",
            "ssh_key",
            Secret(sshd_loopback.client_key.read_text()),
            username="root",
        )
        auth = muster.SSHAuth.from_credential("deploy", store, known_hosts=loopback_known_hosts)
        assert "BEGIN" not in repr(auth)
        addr, port = sshd_loopback.listen[0]
        inv = Inventory()
        # No user: the vault credential's.
        inv.add_host(Host("web1", address=addr, port=port, groups=("web",)))
        result = muster.Engine(inv, auth, audit=tmp_path / "a.jsonl").execute(_workflow())
        assert result.status is RolloutStatus.SUCCEEDED
        assert "hello-from-root" in result.task_results["hello"].hosts["web1"].stdout
        assert "BEGIN OPENSSH" not in (tmp_path / "a.jsonl").read_text()
    finally:
        store.close()


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MUSTER, *args], capture_output=True, text=True, timeout=60, env=env or dict(os.environ)
    )


def test_muster_run_writes_a_chain_that_verify_file_checks(
    sshd_loopback: SshdServer, loopback_known_hosts: Path, tmp_path: Path
) -> None:
    addr, port = sshd_loopback.listen[0]
    inv = tmp_path / "hosts.ini"
    inv.write_text(f"web1 ansible_host={addr} ansible_port={port} ansible_user=root\n")
    audit = tmp_path / "audit.jsonl"
    for command in ("echo one", "echo two"):
        done = _cli(
            "run", "all", "-i", str(inv), "--key", str(sshd_loopback.client_key),
            "--known-hosts", str(loopback_known_hosts), "--audit-file", str(audit),
            "--", command,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    rows = _ran(audit)
    assert len(rows) == 4 and {r["target"] for r in rows} == {"web1"}
    ok = _cli("audit", "verify-file", str(audit))
    assert ok.returncode == 0 and "4 records" in ok.stdout, ok.stdout + ok.stderr
    rows[2]["details"]["commands"][0]["argv"][-1] = "echo innocent"  # type: ignore[index]
    audit.write_text("".join(json.dumps(r) + "\n" for r in rows))
    broken = _cli("audit", "verify-file", str(audit))
    assert broken.returncode == 1
    assert "line 3" in broken.stdout, broken.stdout


def test_no_audit_writes_nothing_and_an_unwritable_file_refuses_to_run(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    done = _cli("run", "localhost", "--no-audit", "--", "true")
    assert done.returncode == 0, done.stderr
    env = {**os.environ, "MUSTER_AUDIT_FILE": str(audit)}
    assert _cli("run", "localhost", "--", "true", env=env).returncode == 0
    assert verify_file(audit).checked == 2
    (tmp_path / "blocker").write_text("")
    refused = _cli(
        "run", "localhost", "--audit-file", str(tmp_path / "blocker" / "a.jsonl"), "--",
        "touch", str(tmp_path / "ran"),
    )  # fmt: skip
    assert refused.returncode == 2
    assert "cannot open" in refused.stderr and "nothing was run" in refused.stderr
    assert not (tmp_path / "ran").exists()
