"""SshOptions reach the SSH transport: keepalives decide how soon a dead link is seen."""

from __future__ import annotations

from muster.app import SshOptions, default_transports
from muster.domain.hosts import TransportKind
from muster.transports.ssh import SshTransport


def test_keepalive_options_reach_the_ssh_transport() -> None:
    opts = SshOptions(keepalive_interval=0.5, keepalive_count_max=4, connect_timeout=2)
    transport = default_transports(opts, kinds={TransportKind.SSH})[TransportKind.SSH]
    assert isinstance(transport, SshTransport)
    assert transport._keepalive == (0.5, 4)


def test_keepalive_defaults_notice_a_dead_link_within_a_minute() -> None:
    transport = default_transports(SshOptions(), kinds={TransportKind.SSH})[TransportKind.SSH]
    assert isinstance(transport, SshTransport)
    interval, count = transport._keepalive
    assert interval * count == 45.0
