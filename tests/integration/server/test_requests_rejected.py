"""Every bad request is a 4xx naming the field, and changes nothing stored."""

from __future__ import annotations

import httpx

from tests.integration.server.harness import LiveServer
from tests.integration.server.helpers import row_counts, save_script

PARAMS = [
    {"name": "count", "type": "integer", "required": True},
    {"name": "mode", "type": "choice", "choices": ["fast", "safe"], "default": "safe"},
    {"name": "token", "type": "secret"},
]


def test_parameter_rejections_store_nothing(server: LiveServer, api: httpx.Client) -> None:
    script = save_script(api, name="count", body="echo ${count} ${mode}\n", parameters=PARAMS)
    url = f"/api/v1/automation/scripts/{script['id']}/execute"
    before = row_counts(server)
    cases = [
        ({"host_ids": ["localhost"], "parameter_values": {}}, "count"),
        ({"host_ids": ["localhost"], "parameter_values": {"count": "lots"}}, "count"),
        ({"host_ids": ["localhost"], "parameter_values": {"count": 1, "mode": "yolo"}}, "mode"),
        ({"host_ids": ["localhost"], "parameter_values": {"count": 1, "nope": 2}}, "nope"),
        ({"host_ids": ["localhost"], "parameter_values": {"count": 1, "token": 5}}, "token"),
        ({"host_ids": ["no-such-host"], "parameter_values": {"count": 1}}, "host_ids"),
        ({"host_ids": [], "parameter_values": {"count": 1}}, "host_ids"),
        ({"host_ids": ["localhost"], "parameter_values": {"count": 1}, "version": 9}, "version"),
        ({"host_ids": ["localhost"], "parameter_values": {"count": 1}, "versoin": 1}, "versoin"),
    ]
    for body, field in cases:
        resp = api.post(url, json=body)
        assert resp.status_code == 422, (field, resp.status_code, resp.text)
        payload = resp.json()
        assert field in [d["field"] for d in payload["detail"]], (field, payload)
        assert payload["message"]
    # A secret's rejected value is never echoed back.
    leaked = api.post(
        url, json={"host_ids": ["localhost"], "parameter_values": {"count": "x", "token": 123456}}
    )
    assert "123456" not in leaked.text
    assert row_counts(server) == before


def test_other_rejections_store_nothing(server: LiveServer, api: httpx.Client) -> None:
    before = row_counts(server)
    bad = [
        ("post", "/api/v1/hosts", {"name": "h1", "port": 0}, "port"),
        ("post", "/api/v1/hosts", {"name": "h1", "shells": ["fish"]}, "shells.0"),
        ("post", "/api/v1/hosts", {"name": "h1", "transport": "carrier-pigeon"}, "transport"),
        ("post", "/api/v1/hosts/import", {"content": "[web\nweb1"}, "content"),
        (
            "post",
            "/api/v1/automation/commands",
            {"command": "", "host_ids": ["localhost"]},
            "command",
        ),
        (
            "post",
            "/api/v1/automation/commands",
            {"command": "uptime", "host_ids": ["localhost"], "shell": "fish"},
            "shell",
        ),
        (
            "post",
            "/api/v1/automation/jobs",
            {
                "type": "service_control",
                "host_ids": ["localhost"],
                "action": "restart",
                "service": "--now",
            },
            "service",
        ),
        (
            "post",
            "/api/v1/automation/jobs",
            {
                "type": "service_control",
                "host_ids": ["localhost"],
                "action": "restart",
                "service": "nginx",
                "force": True,
            },
            "force",
        ),
        (
            "post",
            "/api/v1/automation/jobs",
            {"type": "teleport", "host_ids": ["localhost"]},
            "type",
        ),
        ("post", "/api/v1/webhooks", {"url": "ftp://x", "secret": "0123456789"}, "url"),
        ("post", "/api/v1/webhooks", {"url": "http://127.0.0.1:9/x", "secret": "short"}, "secret"),
        ("get", "/api/v1/automation/executions?status=exploded", None, "status"),
        ("get", "/api/v1/automation/executions?limit=0", None, "limit"),
    ]
    for method, path, body, field in bad:
        resp = api.request(method, path, json=body)
        assert 400 <= resp.status_code < 500, (path, field, resp.text)
        assert field in [d["field"] for d in resp.json()["detail"]], (field, resp.json())
    dup = api.post("/api/v1/hosts", json={"name": "localhost"})
    assert dup.status_code == 409, dup.text
    assert row_counts(server) == before


def test_not_found_is_404_json(api: httpx.Client) -> None:
    for path in (
        "/api/v1/automation/scripts/nope",
        "/api/v1/automation/executions/nope",
        "/api/v1/hosts/nope",
        "/api/v1/nothing-here",
    ):
        resp = api.get(path)
        assert resp.status_code == 404, path
        assert resp.json()["message"], path
