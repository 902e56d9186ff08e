"""A muster server whose hosts are a real OpenSSH sshd, logged into with a vault credential.

The server trusts the sshd through ``ssh_known_hosts`` and has no default
client key: the only way in is the ``ssh_key`` credential created through
the API and named by the hosts, so every test here also proves that path.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fleet.sshd import SshdServer
from tests.integration.server.harness import LiveServer, server_settings

__all__ = ["SshdApi", "sshd_api"]

HOSTS = ("sshd-a", "sshd-b")


@dataclass
class SshdApi:
    server: LiveServer
    api: httpx.Client
    hosts: tuple[str, ...]


@pytest.fixture
def sshd_api(database_url: str, tmp_path: Path, sshd_loopback: SshdServer) -> Iterator[SshdApi]:
    known = sshd_loopback.write_known_hosts(tmp_path / "known_hosts")
    live = LiveServer(
        server_settings(tmp_path / "data", database_url, ssh_known_hosts=str(known)),
        localhost=False,
    ).start()
    try:
        with live.client() as api:
            made = api.post(
                "/api/v1/credentials",
                json={
                    "name": "sshd-root",
                    "kind": "ssh_key",
                    "secret": sshd_loopback.client_key.read_text(),
                    "username": "root",
                },
            )
            assert made.status_code == 201, made.text
            addr, port = sshd_loopback.listen[0]
            for name in HOSTS:
                resp = api.post(
                    "/api/v1/hosts",
                    json={
                        "name": name,
                        "address": addr,
                        "port": port,
                        "credential_ref": "sshd-root",
                        "groups": ["sshd"],
                        "shells": ["bash", "sh", "zsh", "ksh", "python"],
                    },
                )
                assert resp.status_code == 201, resp.text
            yield SshdApi(live, api, HOSTS)
    finally:
        live.stop()
