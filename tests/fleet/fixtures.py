"""Fleet fixtures for every test layer: real OpenSSH sshd on loopback and in namespaces."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fleet.netns import NetnsHost, cleanup_stale, netns_available
from tests.fleet.sshd import SshdServer, generate_key


@pytest.fixture(scope="session")
def sshd_loopback() -> Iterator[SshdServer]:
    """One real sshd on 127.0.0.1:<free port>, shared by the session."""
    server = SshdServer().start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def loopback_known_hosts(sshd_loopback: SshdServer, tmp_path: Path) -> Path:
    """A known_hosts file that trusts ``sshd_loopback``."""
    return sshd_loopback.write_known_hosts(tmp_path / "known_hosts")


@pytest.fixture(scope="session")
def fleet_client_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = tmp_path_factory.mktemp("fleet-key") / "client_ed25519"
    generate_key(key)
    return key


@pytest.fixture(scope="session")
def _netns_ready() -> None:
    reason = netns_available()
    if reason is not None:
        print(f"skipping network-namespace tests: {reason}")
        pytest.skip(reason)
    cleanup_stale()


@pytest.fixture
def netns_fleet(_netns_ready: None, fleet_client_key: Path) -> Iterator[list[NetnsHost]]:
    """Three namespace hosts, each with a real sshd on <10.77.n.2>:22."""
    hosts: list[NetnsHost] = []
    try:
        for _ in range(3):
            host = NetnsHost(client_key=fleet_client_key).create()
            hosts.append(host)
            host.start_sshd()
        yield hosts
    finally:
        for host in hosts:
            host.destroy()


@pytest.fixture
def netns_known_hosts(netns_fleet: list[NetnsHost], tmp_path: Path) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text("".join(h.sshd.known_hosts_lines() for h in netns_fleet if h.sshd is not None))
    return path
