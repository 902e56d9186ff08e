"""Logging in with vault credentials (keys, passwords) against a real OpenSSH sshd."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest

from muster.domain.credentials import CredentialKind, SshCredential
from muster.domain.hosts import Host
from muster.domain.plans import Plan
from muster.domain.secret import Secret
from muster.domain.states import FailureReason, HostRunState
from muster.transports.ssh import SshTransport
from muster.transports.ssh_credentials import key_fingerprint
from tests.fleet.sshd import SshdServer, generate_key
from tests.integration.ssh_helpers import Collect


class Vault:
    """A credential source as the server's is: one credential per ref, opened on demand."""

    def __init__(self, **creds: SshCredential) -> None:
        self.creds = creds
        self.asked: list[str] = []

    async def ssh_credential(self, host: Host) -> SshCredential | None:
        self.asked.append(host.name)
        return self.creds.get(host.credential_ref or "")


def key_cred(server: SshdServer, *, passphrase: str | None = None) -> SshCredential:
    key = asyncssh.read_private_key(server.client_key)
    # PKCS#8 when encrypted: OpenSSH's own encrypted format needs bcrypt, not installed here.
    fmt = "openssh" if passphrase is None else "pkcs8-pem"
    text = key.export_private_key(fmt, passphrase).decode()
    return SshCredential(
        "deploy",
        CredentialKind.SSH_KEY,
        Secret(text),
        username="root",
        passphrase=Secret(passphrase) if passphrase is not None else None,
    )


def vault_host(server: SshdServer, ref: str | None = "deploy", **kwargs: object) -> Host:
    addr, port = server.listen[0]
    return Host("vaulted", addr, port, credential_ref=ref, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def ssh(loopback_known_hosts: Path) -> AsyncIterator[SshTransport]:
    # No client keys of its own, no agent: only the vault can log it in.
    transport = SshTransport(known_hosts=str(loopback_known_hosts), connect_timeout=5)
    try:
        yield transport
    finally:
        await transport.close()


@pytest.fixture(autouse=True)
def _no_agent_no_home_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


@pytest.mark.parametrize("passphrase", [None, "open sesame"], ids=["plain", "encrypted"])
async def test_a_vault_key_logs_in_as_the_credentials_user(
    ssh: SshTransport, sshd_loopback: SshdServer, passphrase: str | None
) -> None:
    ssh.use_credentials(Vault(deploy=key_cred(sshd_loopback, passphrase=passphrase)))
    sink = Collect()
    outcome = await ssh.run_plan(vault_host(sshd_loopback), Plan.command("id -un"), sink)
    assert outcome.state is HostRunState.SUCCEEDED, outcome.message
    assert sink.stdout == "root\n"


async def test_a_host_key_file_wins_and_the_vault_is_not_asked(
    ssh: SshTransport, sshd_loopback: SshdServer
) -> None:
    vault = Vault()
    ssh.use_credentials(vault)
    host = vault_host(sshd_loopback, user="root", key_file=str(sshd_loopback.client_key))
    outcome = await ssh.run_plan(host, Plan.command("true"), Collect())
    assert outcome.state is HostRunState.SUCCEEDED, outcome.message
    assert vault.asked == []


async def test_a_host_without_a_credential_falls_back_to_the_transport_keys(
    sshd_loopback: SshdServer, loopback_known_hosts: Path
) -> None:
    vault = Vault()
    transport = SshTransport(
        known_hosts=str(loopback_known_hosts),
        client_keys=[str(sshd_loopback.client_key)],
        username="root",
        credentials=vault,
    )
    outcome = await transport.run_plan(
        vault_host(sshd_loopback, None), Plan.command("true"), Collect()
    )
    await transport.close()
    assert outcome.state is HostRunState.SUCCEEDED, outcome.message
    assert vault.asked == ["vaulted"]


async def test_hosts_logging_in_with_different_credentials_never_share_a_connection(
    ssh: SshTransport, sshd_loopback: SshdServer
) -> None:
    cred = key_cred(sshd_loopback)
    ssh.use_credentials(Vault(a=cred, b=cred))
    for ref in ("a", "b", "a"):
        outcome = await ssh.run_plan(
            vault_host(sshd_loopback, ref), Plan.command("true"), Collect()
        )
        assert outcome.state is HostRunState.SUCCEEDED
    assert ssh.connections_opened == 2
    assert ssh.pooled_connections == 2


@pytest.mark.parametrize(
    ("cred", "problem"),
    [
        (
            SshCredential("deploy", CredentialKind.SSH_KEY, Secret("not a key"), "root"),
            "credential deploy: not a usable private key",
        ),
        (
            SshCredential("deploy", CredentialKind.TOKEN, Secret("s3cr3t-t0ken"), "root"),
            "credential deploy is a token, not an SSH key or password",
        ),
        (
            # This sshd takes keys only: the password is offered and refused.
            SshCredential("deploy", CredentialKind.PASSWORD, Secret("hunter2"), "root"),
            "PermissionDenied",
        ),
    ],
    ids=["unusable-key", "token", "password-refused"],
)
async def test_a_credential_that_cannot_log_in_is_auth_failed(
    ssh: SshTransport, sshd_loopback: SshdServer, cred: SshCredential, problem: str
) -> None:
    ssh.use_credentials(Vault(deploy=cred))
    outcome = await ssh.run_plan(vault_host(sshd_loopback), Plan.command("true"), Collect())
    assert outcome.state is HostRunState.FAILED
    assert outcome.reason is FailureReason.AUTH_FAILED
    assert outcome.started is False
    assert problem in outcome.message
    assert cred.secret.reveal() not in outcome.message


def test_key_fingerprint_matches_ssh_keygen(tmp_path: Path) -> None:
    key = tmp_path / "k"
    generate_key(key)
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(key)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[1]
    assert key_fingerprint(key.read_text()) == f"ssh-ed25519 {listed}"
    with pytest.raises(ValueError, match="not a usable private key"):
        key_fingerprint("-----BEGIN NOTHING-----")
