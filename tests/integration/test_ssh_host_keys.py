"""Host-key policies and authentication against a real OpenSSH sshd."""

from __future__ import annotations

from pathlib import Path

from muster.domain.hosts import Host
from muster.domain.plans import Plan
from muster.domain.states import FailureReason, HostRunState
from muster.transports.ssh import HostKeyPolicy, SshTransport
from tests.fleet.sshd import SshdServer, generate_key
from tests.integration.ssh_helpers import Collect, host_of, transport_for


async def test_strict_refuses_a_changed_host_key(sshd_loopback: SshdServer, tmp_path: Path) -> None:
    other = tmp_path / "other_host_key"
    addr, port = sshd_loopback.listen[0]
    known = tmp_path / "kh"
    known.write_text(f"[{addr}]:{port} {generate_key(other)}\n")
    outcome = await transport_for(sshd_loopback, known).run_plan(
        host_of(sshd_loopback), Plan.command("true"), Collect()
    )
    assert outcome.reason is FailureReason.HOST_KEY_MISMATCH
    assert outcome.state is HostRunState.FAILED and outcome.started is False


async def test_strict_refuses_an_unknown_host(sshd_loopback: SshdServer, tmp_path: Path) -> None:
    known = tmp_path / "kh"
    outcome = await transport_for(sshd_loopback, known).run_plan(
        host_of(sshd_loopback), Plan.command("true"), Collect()
    )
    assert outcome.reason is FailureReason.HOST_KEY_UNKNOWN
    assert not known.exists()


async def test_accept_new_records_an_unknown_host_then_trusts_it(
    sshd_loopback: SshdServer, tmp_path: Path
) -> None:
    known = tmp_path / "kh"
    transport = transport_for(sshd_loopback, known, host_key_policy=HostKeyPolicy.ACCEPT_NEW)
    outcome = await transport.run_plan(host_of(sshd_loopback), Plan.command("true"), Collect())
    await transport.close()
    assert outcome.state is HostRunState.SUCCEEDED
    assert known.read_text() == sshd_loopback.known_hosts_lines()
    strict = transport_for(sshd_loopback, known)
    again = await strict.run_plan(host_of(sshd_loopback), Plan.command("true"), Collect())
    await strict.close()
    assert again.state is HostRunState.SUCCEEDED


async def test_accept_new_still_refuses_a_changed_key(
    sshd_loopback: SshdServer, tmp_path: Path
) -> None:
    addr, port = sshd_loopback.listen[0]
    known = tmp_path / "kh"
    known.write_text(f"[{addr}]:{port} {generate_key(tmp_path / 'other')}\n")
    before = known.read_text()
    transport = transport_for(sshd_loopback, known, host_key_policy=HostKeyPolicy.ACCEPT_NEW)
    outcome = await transport.run_plan(host_of(sshd_loopback), Plan.command("true"), Collect())
    assert outcome.reason is FailureReason.HOST_KEY_MISMATCH
    assert known.read_text() == before


async def test_wrong_client_key_is_auth_failed(
    sshd_loopback: SshdServer, loopback_known_hosts: Path, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong_key"
    generate_key(wrong)
    transport = SshTransport(known_hosts=str(loopback_known_hosts), client_keys=[str(wrong)])
    outcome = await transport.run_plan(host_of(sshd_loopback), Plan.command("true"), Collect())
    assert outcome.reason is FailureReason.AUTH_FAILED
    assert outcome.started is False


async def test_host_key_file_overrides_transport_keys(
    sshd_loopback: SshdServer, loopback_known_hosts: Path, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong_key"
    generate_key(wrong)
    transport = SshTransport(known_hosts=str(loopback_known_hosts), client_keys=[str(wrong)])
    addr, port = sshd_loopback.listen[0]
    host = Host("k", addr, port, user="root", key_file=str(sshd_loopback.client_key))
    outcome = await transport.run_plan(host, Plan.command("true"), Collect())
    await transport.close()
    assert outcome.state is HostRunState.SUCCEEDED


async def test_a_removed_known_hosts_makes_the_host_unknown_again(
    sshd_loopback: SshdServer, loopback_known_hosts: Path
) -> None:
    # known_hosts is parsed once and re-read when it changes: a removal counts.
    transport = transport_for(sshd_loopback, loopback_known_hosts, pool=False)
    first = await transport.run_plan(host_of(sshd_loopback), Plan.command("true"), Collect())
    assert first.state is HostRunState.SUCCEEDED
    loopback_known_hosts.unlink()
    again = await transport.run_plan(host_of(sshd_loopback), Plan.command("true"), Collect())
    assert again.reason is FailureReason.HOST_KEY_UNKNOWN
    assert again.started is False
