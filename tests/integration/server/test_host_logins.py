"""How the server logs in to a host is the server's secret, not the operator's (issue 9).

Found beside the local-transport hole: an operator could set ``key_file`` to a
private key on the server's disk, or send a host that logs in with a vault
credential (its own or its group's) to an address they control and harvest
the secret. Setting a key file needs ``hosts.local``; moving a credentialled
login needs ``credentials.manage``; the rest of a host stays the operator's.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.integration.server.harness import LiveServer


@pytest.fixture
def operator(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client(token=server.issue_token("otto", ["operator"])) as client:
        yield client


def _refused(resp: httpx.Response, needs: str) -> None:
    assert resp.status_code == 403, resp.text
    assert needs in resp.text, resp.text


def test_only_admin_sets_a_key_file_on_the_servers_disk(
    server: LiveServer, api: httpx.Client, operator: httpx.Client
) -> None:
    host = {"name": "keyed", "address": "10.9.0.7", "key_file": "/root/.ssh/id_ed25519"}
    _refused(operator.post("/api/v1/hosts", json=host), "hosts.local")
    plain = operator.post("/api/v1/hosts", json={"name": "plain", "address": "10.9.0.8"})
    assert plain.status_code == 201, plain.text
    _refused(
        operator.patch(f"/api/v1/hosts/{plain.json()['id']}", json={"key_file": "/etc/shadow"}),
        "hosts.local",
    )
    ini = "[web]\nsneaky ansible_host=10.9.0.9 ansible_ssh_private_key_file=/root/.ssh/id_rsa\n"
    _refused(
        operator.post("/api/v1/hosts/import", json={"format": "ini", "content": ini}),
        "hosts.local",
    )
    names = {h["name"] for h in api.get("/api/v1/hosts").json()["items"]}
    assert not {"keyed", "sneaky"} & names
    assert api.post("/api/v1/hosts", json=host).status_code == 201


def test_a_credentialled_login_is_moved_only_by_credential_managers(
    server: LiveServer, api: httpx.Client, operator: httpx.Client
) -> None:
    made = api.post(
        "/api/v1/credentials", json={"name": "db-pass", "kind": "password", "secret": "s3cret!"}
    )
    assert made.status_code == 201, made.text
    host = api.post(
        "/api/v1/hosts",
        json={"name": "db-9", "address": "10.9.1.9", "credential_ref": "db-pass"},
    ).json()
    # Labels do not move the login: the operator may change them.
    ok = operator.patch(f"/api/v1/hosts/{host['id']}", json={"labels": {"tier": "db"}})
    assert ok.status_code == 200, ok.text
    for change in ({"address": "203.0.113.66"}, {"port": 2222}, {"user": "x"}):
        _refused(operator.patch(f"/api/v1/hosts/{host['id']}", json=change), "credentials.manage")
    _refused(
        operator.post(
            "/api/v1/hosts",
            json={"name": "mine", "address": "203.0.113.66", "credential_ref": "db-pass"},
        ),
        "credentials.manage",
    )
    # A group's credential reaches every host put into the group.
    assert api.put("/api/v1/groups/secure/credential", json={"credential": "db-pass"}).json()
    _refused(
        operator.post(
            "/api/v1/hosts",
            json={"name": "joiner", "address": "203.0.113.67", "groups": ["secure"]},
        ),
        "credentials.manage",
    )
    other = operator.post("/api/v1/hosts", json={"name": "loner", "address": "10.9.1.10"})
    assert other.status_code == 201, other.text
    _refused(
        operator.patch(f"/api/v1/hosts/{other.json()['id']}", json={"groups": ["secure"]}),
        "credentials.manage",
    )
    stored = api.get(f"/api/v1/hosts/{host['id']}").json()
    assert stored["address"] == "10.9.1.9" and stored["port"] == 22
    moved = api.patch(f"/api/v1/hosts/{host['id']}", json={"address": "10.9.1.99"})
    assert moved.status_code == 200, moved.text
