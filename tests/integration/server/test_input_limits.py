"""Sizes at the door of a running server: bodies (413 before they are read), fields (422
naming the field and the limit), list pages without bodies, NUL checked on decoded
values, host imports capped and stopped when nobody waits for them any more."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from muster.domain.hosts import Host
from muster.errors import OperationCancelledError
from tests.integration.server.harness import LiveServer, server_settings, wait_for
from tests.integration.server.helpers import row_counts, save_script

LIMITS = {
    "max_request_bytes": 64 * 1024,
    "max_import_bytes": 32 * 1024,
    "max_import_hosts": 50,
    "max_script_bytes": 16 * 1024,
    "max_command_bytes": 1024,
    "max_parameter_bytes": 1024,
}
PARAMS = [{"name": "msg", "type": "string", "default": "hi"}]


@pytest.fixture
def small(tmp_path: Path) -> Iterator[LiveServer]:
    """A server with small, configured limits (SQLite; the limits are checked before storage)."""
    live = LiveServer(
        server_settings(tmp_path / "data", "", **LIMITS), localhost=True, embedded_worker=False
    ).start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def api(small: LiveServer) -> Iterator[httpx.Client]:
    with small.client() as client:
        yield client


def _problem(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.text[:300])
    return dict(resp.json())


def _fields(body: dict[str, Any]) -> list[str | None]:
    return [d["field"] for d in body["detail"]]


# -- whole bodies ----------------------------------------------------------------------


def test_a_body_over_the_limit_is_413_naming_it_before_anything_reads_it(
    small: LiveServer, api: httpx.Client
) -> None:
    before = row_counts(small)
    big = {"name": "big", "shell": "bash", "body": "x" * (70 * 1024)}
    said = _problem(api.post("/api/v1/automation/scripts", json=big), 413)
    assert "65536 bytes (64 KiB)" in said["message"]

    # Streamed without a Content-Length: counted as it arrives.
    data = json.dumps(big).encode()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(data), 8192):
            yield data[i : i + 8192]

    streamed = api.post(
        "/api/v1/automation/scripts",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert "64 KiB" in _problem(streamed, 413)["message"]

    # Before authentication too: an anonymous sender cannot make the server buffer it.
    with small.client(token=None) as anon:
        assert anon.post("/api/v1/automation/scripts", json=big).status_code == 413
    # A console form as well.
    form = api.post("/scripts", data={"name": "big", "body": "x" * (70 * 1024)})
    assert form.status_code == 413
    # The import route has its own limit.
    inventory = {"content": "[web]\n" + "web1\n" * 7000, "format": "ini"}
    assert (
        "32768 bytes (32 KiB)"
        in _problem(api.post("/api/v1/hosts/import", json=inventory), 413)["message"]
    )
    assert row_counts(small) == before


# -- fields ----------------------------------------------------------------------------


def test_fields_over_their_limits_are_422_naming_field_and_limit(
    small: LiveServer, api: httpx.Client
) -> None:
    before = row_counts(small)
    scripts = "/api/v1/automation/scripts"
    body = _problem(api.post(scripts, json={"name": "s", "body": "é" * 8193}), 422)
    assert _fields(body) == ["body"] and "16386 bytes; the limit is 16384 bytes" in body["message"]
    default = [{"name": "msg", "type": "string", "default": "d" * 1025}]
    body = _problem(
        api.post(scripts, json={"name": "s", "body": "echo", "parameters": default}), 422
    )
    assert _fields(body) == ["parameters.0.default"] and "1024 bytes" in body["message"]
    command = {"command": "echo " + "y" * 1020, "host_ids": ["localhost"]}
    body = _problem(api.post("/api/v1/automation/commands", json=command), 422)
    assert _fields(body) == ["command"] and "1025 bytes; the limit is 1024 bytes" in body["message"]
    job = {"type": "command", "command": "z" * 2000, "host_ids": ["localhost"]}
    assert _fields(_problem(api.post("/api/v1/automation/jobs", json=job), 422)) == ["command"]
    assert row_counts(small) == before

    script = save_script(api, name="echo", body="echo ${msg}\n", parameters=PARAMS)
    at_limit = save_script(api, name="full", body="#" * (16 * 1024))
    assert at_limit["version"] == 1
    execute = f"{scripts}/{script['id']}/execute"
    value = {"host_ids": ["localhost"], "parameter_values": {"msg": "v" * 1025}}
    body = _problem(api.post(execute, json=value), 422)
    assert _fields(body) == ["parameter_values.msg"] and "parameter 'msg'" in body["message"]

    # The console refuses the same, on its forms.
    page = api.post("/scripts", data={"name": "s2", "shell": "bash", "body": "b" * 20000})
    assert page.status_code == 422 and "16384 bytes" in page.text
    page = api.post(
        f"/scripts/{script['id']}/execute",
        data={"version": "1", "targets": "localhost", "param.msg": "v" * 1025},
    )
    assert page.status_code == 422 and "1024 bytes" in page.text
    counts = row_counts(small)
    assert (
        counts["executions"] == before["executions"] and counts["scripts"] == before["scripts"] + 2
    )


def test_list_pages_leave_bodies_and_host_results_out(small: LiveServer, api: httpx.Client) -> None:
    script = save_script(api, name="big", body="echo " + "b" * 10000 + "\n", parameters=PARAMS)
    save_script(api, name="big", body="echo two\n", parameters=PARAMS)
    listed = api.get("/api/v1/automation/scripts").json()["items"]
    assert [s["name"] for s in listed] == ["big"]
    assert "body" not in listed[0] and listed[0]["version"] == 2 and listed[0]["parameters"]
    versions = api.get(f"/api/v1/automation/scripts/{script['id']}/versions").json()["items"]
    assert [v["number"] for v in versions] == [2, 1]
    assert all("body" not in v for v in versions)
    one = api.get(f"/api/v1/automation/scripts/{script['id']}/versions/1").json()
    assert one["body"].startswith("echo bbb")
    assert api.get(f"/api/v1/automation/scripts/{script['id']}").json()["body"] == "echo two\n"

    made = api.post("/api/v1/hosts", json={"name": "gone", "address": "127.0.0.1", "port": 9})
    assert made.status_code == 201, made.text
    started = api.post(
        f"/api/v1/automation/scripts/{script['id']}/execute",
        json={"host_ids": ["gone"], "parameter_values": {"msg": "p" * 1000}},
    )
    assert started.status_code == 201, started.text
    items = api.get("/api/v1/automation/executions").json()["items"]
    assert [e["id"] for e in items] == [started.json()["id"]]
    assert {"hosts", "skipped_hosts", "parameter_values"}.isdisjoint(items[0])
    assert items[0]["status"] and "counts" in items[0]
    full = api.get(f"/api/v1/automation/executions/{items[0]['id']}").json()
    assert full["hosts"][0]["host"] == "gone" and full["parameter_values"]["msg"] == "p" * 1000


# -- NUL -------------------------------------------------------------------------------


def test_nul_is_refused_in_decoded_values_not_in_text_that_spells_it(
    small: LiveServer, api: httpx.Client
) -> None:
    spelled = "printf '%s\\n' '\\u0000'\n"  # six characters: backslash, u, 0, 0, 0, 0
    saved = api.post("/api/v1/automation/scripts", json={"name": "spell", "body": spelled})
    assert saved.status_code == 201, saved.text
    assert api.get("/api/v1/automation/scripts/spell").json()["body"] == spelled

    before = row_counts(small)
    real = api.post("/api/v1/automation/scripts", json={"name": "nul", "body": "a\x00b"})
    assert _problem(real, 422)["message"].startswith("NUL characters")
    nested = {"host_ids": ["localhost"], "parameter_values": {"msg": "x\x00"}}
    body = _problem(api.post("/api/v1/automation/scripts/spell/execute", json=nested), 422)
    assert _fields(body) == ["parameter_values.msg"]
    raw = api.post(
        "/api/v1/automation/scripts",
        content=b'{"name": "raw", "body": "a\x00b"}',
        headers={"Content-Type": "application/json"},
    )
    assert raw.status_code == 422
    form = api.post(
        "/scripts",
        content=b"name=f&shell=bash&body=a%00b",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 422 and "NUL" in form.text
    assert row_counts(small) == before
    ok = api.post(
        "/scripts",
        content=b"name=pct&shell=bash&body=echo+%2500",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert ok.status_code == 303, ok.text[:300]
    assert api.get("/api/v1/automation/scripts/pct").json()["body"] == "echo %00"


# -- host import -----------------------------------------------------------------------


def _ini(n: int, prefix: str = "web") -> str:
    return "[web]\n" + "".join(f"{prefix}{i:03d}\n" for i in range(n))


def test_an_import_over_the_host_cap_is_422_naming_it_and_stores_nothing(
    small: LiveServer, api: httpx.Client
) -> None:
    before = row_counts(small)
    over = api.post("/api/v1/hosts/import", json={"content": _ini(51), "format": "ini"})
    body = _problem(over, 422)
    assert _fields(body) == ["content"] and "more than 50 hosts (the limit)" in body["message"]
    repeated = "".join(f"[g{i}]\nweb[001:050]\n" for i in range(11))
    body = _problem(api.post("/api/v1/hosts/import", json={"content": repeated}), 422)
    assert "more than 500 host entries" in body["message"]
    assert row_counts(small) == before
    done = api.post("/api/v1/hosts/import", json={"content": _ini(50), "format": "ini"})
    assert done.status_code == 201 and done.json()["total"] == 50


def _send_import(server: LiveServer, content: str) -> socket.socket:
    """An import request written whole on a raw socket; the caller closes it."""
    body = json.dumps({"content": content, "format": "ini"}).encode()
    head = (
        f"POST /api/v1/hosts/import HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {server.admin_token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(head + body)
    return sock


def _hold_import(server: LiveServer) -> tuple[threading.Event, dict[str, Any]]:
    """Make the store's import wait until it is asked to stop; record how it ended."""
    store = server.ctx.store
    real = store.upsert_hosts
    entered = threading.Event()
    outcome: dict[str, Any] = {}

    def held(hosts: Any, **kw: Any) -> Any:
        entered.set()
        stop = kw.get("should_stop")
        try:
            wait_for(lambda: stop is not None and stop(), timeout=30, what="a stop request")
            return real(hosts, **kw)
        except BaseException as exc:
            outcome["error"] = exc
            raise

    store.upsert_hosts = held
    return entered, outcome


def test_an_import_stops_when_its_client_leaves(small: LiveServer) -> None:
    entered, outcome = _hold_import(small)
    sock = _send_import(small, _ini(40))
    assert entered.wait(30), "the import never reached the store"
    sock.close()
    wait_for(lambda: "error" in outcome, timeout=30, what="the import to stop")
    assert isinstance(outcome["error"], OperationCancelledError), outcome
    assert "nothing was stored" in str(outcome["error"])
    with small.client() as api:
        assert [h["name"] for h in api.get("/api/v1/hosts").json()["items"]] == ["localhost"]


def test_an_import_stops_when_the_server_stops(tmp_path: Path) -> None:
    live = LiveServer(
        server_settings(tmp_path / "data", "", **LIMITS), embedded_worker=False
    ).start()
    try:
        entered, outcome = _hold_import(live)
        sock = _send_import(live, _ini(40))
        assert entered.wait(30), "the import never reached the store"
    finally:
        live.stop()
    sock.close()
    wait_for(lambda: "error" in outcome, timeout=30, what="the import to stop")
    assert isinstance(outcome["error"], OperationCancelledError), outcome


# -- header values ---------------------------------------------------------------------


def test_log_downloads_encode_stored_names_that_predate_the_name_rule(
    small: LiveServer, api: httpx.Client
) -> None:
    names = ['evil"; filename="owned.sh', "crlf\r\nX-Injected: 1", "naïve"]
    ids = [small.ctx.store.create_host(Host(name=n, address="127.0.0.1", port=9)).id for n in names]
    started = api.post("/api/v1/automation/commands", json={"command": "true", "host_ids": ids})
    assert started.status_code == 201, started.text
    execution = started.json()
    for run in execution["hosts"]:
        resp = api.get(f"/api/v1/automation/executions/{execution['id']}/hosts/{run['id']}/log")
        assert resp.status_code == 200, resp.text[:200]
        value = resp.headers["content-disposition"]
        assert "x-injected" not in resp.headers
        assert value.count("filename=") == 1 and value.count("filename*=") == 1, value
        exact = unquote(value.split("filename*=UTF-8''", 1)[1])
        assert exact == f"{execution['id']}-{run['host']}-stdout.log"


def test_event_ids_from_headers_are_bounded(small: LiveServer, api: httpx.Client) -> None:
    api.post("/api/v1/hosts", json={"name": "gone", "address": "127.0.0.1", "port": 9})
    started = api.post(
        "/api/v1/automation/commands", json={"command": "true", "host_ids": ["gone"]}
    )
    assert started.status_code == 201, started.text
    eid, rid = started.json()["id"], started.json()["hosts"][0]["id"]
    resp = api.get(
        f"/api/v1/automation/executions/{eid}/stream", headers={"Last-Event-ID": str(2**70)}
    )
    assert resp.status_code == 422 and resp.json()["detail"][0]["field"] == "Last-Event-ID"
    # b"\xb2" arrives as "²", which str.isdigit() accepts and int() refuses.
    for odd in (b"\xb2", str(2**70).encode()):
        url = f"/ui/executions/{eid}/runs/{rid}/output"
        with api.stream("GET", url, headers=[(b"Last-Event-ID", odd)]) as live:
            assert live.status_code == 200, odd
            assert next(live.iter_bytes()).startswith(b": host output")
