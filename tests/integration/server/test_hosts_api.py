"""Hosts over real HTTP: create, update, delete, import inventories."""

from __future__ import annotations

import httpx

INI = """\
[web]
web1 ansible_host=10.0.0.1 muster_shells=bash,sh
web2 ansible_host=10.0.0.2 ansible_user=deploy

[db]
db1 ansible_host=10.0.1.1 ansible_port=2222 muster_labels=dc=dc1
"""

SSH_CONFIG = """\
Host cache1
    HostName 10.0.2.1
    User ops
    Port 2200
"""


def test_localhost_is_registered_with_local_transport(api: httpx.Client) -> None:
    host = api.get("/api/v1/hosts/localhost").json()
    assert host["transport"] == "local"
    assert "sh" in host["effective_shells"]


def test_create_update_delete(api: httpx.Client) -> None:
    resp = api.post(
        "/api/v1/hosts",
        json={"name": "app1", "address": "10.1.0.1", "groups": ["app"], "labels": {"dc": "x"}},
    )
    assert resp.status_code == 201, resp.text
    host = resp.json()
    assert host["effective_shells"] == ["bash", "sh"]
    patched = api.patch(f"/api/v1/hosts/{host['id']}", json={"port": 2222, "shells": ["zsh"]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["port"] == 2222 and patched.json()["effective_shells"] == ["zsh"]
    assert patched.json()["address"] == "10.1.0.1"
    put = api.put("/api/v1/hosts/app1", json={"labels": {"dc": "y"}})
    assert put.json()["labels"] == {"dc": "y"}
    listed = api.get("/api/v1/hosts", params={"group": "app"}).json()
    assert [h["name"] for h in listed["items"]] == ["app1"]
    assert api.delete(f"/api/v1/hosts/{host['id']}").status_code == 204
    assert api.get(f"/api/v1/hosts/{host['id']}").status_code == 404


def test_import_ini_and_ssh_config(api: httpx.Client) -> None:
    resp = api.post("/api/v1/hosts/import", json={"content": INI})
    assert resp.status_code == 201, resp.text
    assert sorted(resp.json()["created"]) == ["db1", "web1", "web2"]
    db1 = api.get("/api/v1/hosts/db1").json()
    assert db1["address"] == "10.0.1.1" and db1["port"] == 2222
    assert db1["labels"].get("dc") == "dc1" and "db" in db1["groups"]
    assert api.get("/api/v1/hosts/web1").json()["shells"] == ["bash", "sh"]
    again = api.post("/api/v1/hosts/import", json={"content": INI}).json()
    assert again["created"] == [] and sorted(again["updated"]) == ["db1", "web1", "web2"]
    ssh = api.post("/api/v1/hosts/import", json={"content": SSH_CONFIG, "format": "ssh_config"})
    assert ssh.status_code == 201, ssh.text
    cache1 = api.get("/api/v1/hosts/cache1").json()
    assert (cache1["address"], cache1["user"], cache1["port"]) == ("10.0.2.1", "ops", 2200)
