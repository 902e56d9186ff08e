"""Twenty real hosts, each a network namespace with its own OpenSSH sshd.

Every host is a :class:`tests.fleet.netns.NetnsHost` (a veth pair to the root
namespace, ``10.77.<n>.2`` inside, sshd on port 22), so a test can cut one
host's link and the others never notice. Namespaces and daemons start in
parallel and are torn down even when set-up fails half way.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fleet.netns import NetnsHost
from tests.integration.rollout.seed004 import NAMES


@dataclass(frozen=True)
class NsFleet:
    hosts: dict[str, NetnsHost]
    client_key: Path
    known_hosts: Path

    @property
    def addresses(self) -> dict[str, str]:
        return {name: h.addr for name, h in self.hosts.items()}


def _start(host: NetnsHost) -> None:
    host.create()
    host.start_sshd()


@pytest.fixture(scope="module")
def ns_fleet(
    _netns_ready: None, fleet_client_key: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NsFleet]:
    # Subnets are handed out one by one (not thread-safe); the slow part runs in parallel.
    hosts = {name: NetnsHost(client_key=fleet_client_key) for name in NAMES}
    try:
        with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
            for done in [pool.submit(_start, h) for h in hosts.values()]:
                done.result()
        known = tmp_path_factory.mktemp("ns-fleet") / "known_hosts"
        known.write_text(
            "".join(h.sshd.known_hosts_lines() for h in hosts.values() if h.sshd is not None)
        )
        yield NsFleet(hosts, fleet_client_key, known)
    finally:
        with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
            list(pool.map(NetnsHost.destroy, hosts.values()))


@pytest.fixture
def fleet(ns_fleet: NsFleet) -> Iterator[NsFleet]:
    """The module's fleet with every link up again after each test."""
    try:
        yield ns_fleet
    finally:
        for host in ns_fleet.hosts.values():
            host.link_up()
