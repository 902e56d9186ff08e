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


BIG = 2**70  # beyond 64 bits


def test_integers_out_of_range_are_422_naming_the_field(
    server: LiveServer, api: httpx.Client
) -> None:
    script = save_script(
        api, name="ints", body="echo ${n}\n", parameters=[{"name": "n", "type": "integer"}]
    )
    sid = script["id"]
    execute = f"/api/v1/automation/scripts/{sid}/execute"
    before = row_counts(server)
    cases = [
        ("post", execute, {"host_ids": ["localhost"], "version": BIG}, "version"),
        ("post", execute, {"host_ids": ["localhost"], "version": 0}, "version"),
        ("post", execute, {"host_ids": ["localhost"], "parameter_values": {"n": BIG}}, "n"),
        ("post", execute, {"host_ids": ["localhost"], "parameter_values": {"n": str(BIG)}}, "n"),
        ("get", f"/api/v1/automation/scripts/{sid}/versions/{BIG}", None, "number"),
        ("post", f"/api/v1/automation/scripts/{sid}/versions/{BIG}/restore", None, "number"),
        ("get", f"/api/v1/automation/scripts?offset={BIG}", None, "offset"),
        ("get", f"/api/v1/automation/executions?offset={BIG}", None, "offset"),
        ("get", f"/api/v1/automation/executions?limit={BIG}", None, "limit"),
        ("get", f"/api/v1/automation/executions/x/stream?after={BIG}", None, "after"),
        ("post", "/api/v1/hosts", {"name": "h1", "port": BIG}, "port"),
    ]
    for method, path, body, field in cases:
        resp = api.request(method, path, json=body)
        assert resp.status_code == 422, (path, body, resp.status_code, resp.text[:300])
        assert field in [d["field"] for d in resp.json()["detail"]], (field, resp.json())
    assert row_counts(server) == before


def test_console_integers_out_of_range_are_422_pages_not_500(
    server: LiveServer, api: httpx.Client
) -> None:
    script = save_script(api, name="console-ints", body="echo hi\n")
    sid = script["id"]
    before = row_counts(server)
    pages = [
        ("get", f"/scripts/{sid}/execute?version=abc", None),
        ("get", f"/scripts/{sid}/execute?version={BIG}", None),
        ("get", f"/scripts/{sid}/versions/{BIG}", None),
        ("post", f"/scripts/{sid}/versions/{BIG}/restore", None),
        ("get", f"/scripts/{sid}/diff?a={BIG}", None),
        ("get", f"/scripts/{sid}?saved={BIG}", None),
        ("get", f"/history?offset={BIG}", None),
        ("get", f"/hosts?offset={BIG}", None),
        ("post", f"/scripts/{sid}/execute", {"version": "abc", "targets": "localhost"}),
        ("post", f"/scripts/{sid}/execute", {"version": str(BIG), "targets": "localhost"}),
        ("post", f"/scripts/{sid}/execute", {"version": "²", "targets": "localhost"}),
    ]
    for method, path, form in pages:
        resp = api.request(method, path, data=form)
        assert resp.status_code == 422, (path, form, resp.status_code, resp.text[:300])
        assert "text/html" in resp.headers["content-type"], path
    assert row_counts(server) == before


def test_host_names_are_checked_on_create_rename_and_import(
    server: LiveServer, api: httpx.Client
) -> None:
    before = row_counts(server)
    for name in ["web\r\n1", 'web"1', "web 1", "-rf", "a..b", "web/1", "x" * 64, "é"]:
        resp = api.post("/api/v1/hosts", json={"name": name})
        assert resp.status_code == 422, (name, resp.text)
        detail = resp.json()["detail"]
        assert [d["field"] for d in detail] == ["name"], detail
        assert repr(name) in detail[0]["problem"] or "empty" in detail[0]["problem"], detail
    made = api.post("/api/v1/hosts", json={"name": "db_primary.example-1"})
    assert made.status_code == 201, made.text
    renamed = api.patch("/api/v1/hosts/db_primary.example-1", json={"name": 'db";x'})
    assert renamed.status_code == 422 and renamed.json()["detail"][0]["field"] == "name"
    imported = api.post("/api/v1/hosts/import", json={"content": "[web]\nweb1\nweb/2\n"})
    assert imported.status_code == 422, imported.text
    assert imported.json()["detail"][0]["field"] == "content"
    assert "'web/2'" in imported.json()["message"]
    after = row_counts(server)
    assert after["hosts"] == before["hosts"] + 1
