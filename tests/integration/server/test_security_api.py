"""Identity and safety on the real app (SQLite file): the RBAC route walk, login,
sessions and CSRF, tokens, approvals bound to executions, and the audit log."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.routing import Mount

from muster.config import Settings
from muster.domain.hosts import Host
from muster.security.passwords import Passwords
from muster.security.rbac import BUILTIN_ROLES, Permission, role_permissions
from muster.security.vault import Vault
from muster.server.app import create_app
from muster.server.auth import CSRF_HEADER, SESSION_COOKIE, is_console_page, security_store
from muster.server.permissions import AUTHENTICATED, PUBLIC, ROUTE_RULES
from muster.store._core import make_engine
from muster.store.migrations import upgrade
from muster.store.security_ops import SecurityOps
from muster.store.sqlalchemy_store import SqlStore

PW = "plum-orbit-cactus-42"


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(
        SecurityOps, "passwords", Passwords(time_cost=1, memory_cost=8, parallelism=1)
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'muster.db'}")
    upgrade(engine)
    store = SqlStore(engine, vault=Vault(os.urandom(32)), clock=clock)
    app = create_app(Settings(data_dir=tmp_path), store=store, embedded_worker=False)
    # An SSH host: an operator may not run anything on the server's own machine.
    store.create_host(Host(name="box", address="192.0.2.10"))
    with TestClient(app) as c:
        yield c
    store.close()


def sec(client: TestClient):
    return security_store(client.app)


def token_for(client: TestClient, name: str, roles: list[str]) -> dict[str, str]:
    sec(client).create_user(name, roles=roles, password=PW)
    issued, _ = sec(client).create_token(name, "t")
    return {"Authorization": f"Bearer {issued.token.reveal()}"}


def _walk(routes: Any) -> Iterator[Any]:
    for route in routes:
        nested = getattr(route, "effective_candidates", None)  # an included router
        if nested is not None:
            yield from _walk(nested())
        else:
            yield route


def _routes(client: TestClient) -> set[tuple[str, str]]:
    """Every (method, path template) the app serves: API, docs, console and mounts."""
    found = set()
    for path, ops in client.app.openapi()["paths"].items():
        for method in ops:
            found.add((method.upper(), path))
    for route in _walk(client.app.routes):
        path = getattr(route, "path", None)
        if isinstance(getattr(route, "original_route", route), Mount) or isinstance(route, Mount):
            found.add(("GET", f"{path}/{{path:path}}"))
            continue
        methods = getattr(getattr(route, "original_route", route), "methods", None) or ()
        for method in methods:
            if path and method != "HEAD":
                found.add((method, path))
    return found


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda m: "1" if m.group(0) == "{number}" else "nope", path)


def test_route_walk_sees_api_console_and_mounts(client: TestClient) -> None:
    routes = _routes(client)
    assert ("POST", "/api/v1/credentials") in routes
    assert ("GET", "/api/v1/audit/verify") in routes
    assert ("GET", "/docs") in routes
    console = {("GET", "/login"), ("GET", "/"), ("GET", "/static/{path:path}")}
    assert console <= routes, "the console's pages must be walked too"


def test_every_route_declares_a_permission_and_no_rule_is_stale(client: TestClient) -> None:
    routes = _routes(client)
    assert routes - set(ROUTE_RULES) == set(), "routes without a declared permission"
    assert set(ROUTE_RULES) - routes == set(), "rules for routes that do not exist"


def test_rbac_route_walk(client: TestClient) -> None:
    """401 without credentials, 403 exactly when the role lacks the permission."""
    headers = {role: token_for(client, f"u-{role}", [role]) for role in BUILTIN_ROLES}
    skip = {("POST", "/api/v1/auth/logout")}  # would end nothing for a token, but keep walk pure
    for (method, path), rule in sorted(ROUTE_RULES.items()):
        if (method, path) in skip:
            continue
        url = _concrete(path)
        body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
        anon = client.request(method, url, json=body, follow_redirects=False)
        if rule.need == PUBLIC:
            assert anon.status_code not in (401, 403), (method, path, anon.status_code)
        elif is_console_page(method, url):
            # a browser is sent to the login page instead of a bare 401
            assert anon.status_code == 303, (method, path, anon.status_code)
            assert anon.headers["location"].startswith("/login?next="), anon.headers
        else:
            assert anon.status_code == 401, (method, path, anon.status_code)
        for role, h in headers.items():
            resp = client.request(method, url, json=body, headers=h, follow_redirects=False)
            allowed = rule.need in (PUBLIC, AUTHENTICATED) or Permission(
                rule.need
            ) in role_permissions(role)
            if allowed:
                assert resp.status_code not in (401, 403), (role, method, path, resp.text)
            else:
                assert resp.status_code == 403, (role, method, path, resp.status_code)


def test_undeclared_route_is_admin_only(client: TestClient) -> None:
    viewer = token_for(client, "vic", ["viewer"])
    assert client.get("/api/v1/nowhere").status_code == 401
    assert client.get("/api/v1/nowhere", headers=viewer).status_code == 403
    admin = token_for(client, "ada", ["admin"])
    assert client.get("/api/v1/nowhere", headers=admin).status_code == 404


def test_bad_and_narrowed_tokens(client: TestClient) -> None:
    assert client.get("/api/v1/hosts", headers={"Authorization": "Bearer mst_x"}).status_code == 401
    sec(client).create_user("ada", roles=["admin"], password=PW)
    issued, _ = sec(client).create_token("ada", "ro", role="viewer")
    h = {"Authorization": f"Bearer {issued.token.reveal()}"}
    assert client.get("/api/v1/hosts", headers=h).status_code == 200
    assert client.post("/api/v1/hosts", json={}, headers=h).status_code == 403


def test_login_session_cookie_and_csrf(client: TestClient) -> None:
    sec(client).create_user("ann", roles=["operator"], password=PW)
    bad = client.post("/api/v1/auth/login", json={"username": "ann", "password": "nope-nope-nope"})
    assert bad.status_code == 401
    resp = client.post("/api/v1/auth/login", json={"username": "ann", "password": PW})
    assert resp.status_code == 200, resp.text
    set_cookie = resp.headers["set-cookie"]
    assert SESSION_COOKIE in set_cookie and "HttpOnly" in set_cookie
    assert "samesite=strict" in set_cookie.lower()
    csrf = resp.json()["csrf_token"]
    me = client.get("/api/v1/auth/me")
    assert me.status_code == 200 and me.json()["user"] == "ann" and me.json()["csrf_token"] == csrf
    # state-changing with the cookie but without the CSRF token: refused
    assert client.post("/api/v1/tokens", json={"name": "x"}).status_code == 403
    assert (
        client.post(
            "/api/v1/tokens", json={"name": "x"}, headers={CSRF_HEADER: "wrong"}
        ).status_code
        == 403
    )
    ok = client.post("/api/v1/tokens", json={"name": "x"}, headers={CSRF_HEADER: csrf})
    assert ok.status_code == 201 and ok.json()["token"].startswith("mst_")
    assert "token" not in client.get("/api/v1/tokens").json()[0]
    # an urlencoded form carries the token as a field
    out = client.post(
        "/api/v1/auth/logout",
        content=f"csrf_token={csrf}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert out.status_code == 204
    assert client.get("/api/v1/auth/me").status_code == 401


def test_create_user_returns_one_time_password_once(client: TestClient) -> None:
    admin = token_for(client, "ada", ["admin"])
    resp = client.post("/api/v1/users", json={"name": "bob", "roles": ["viewer"]}, headers=admin)
    assert resp.status_code == 201
    pw = resp.json()["one_time_password"]
    assert sec(client).authenticate_password("bob", pw).name == "bob"
    listed = client.get("/api/v1/users", headers=admin).json()
    assert pw not in str(listed) and all(
        "password" not in k for u in listed for k in u if k != "must_change_password"
    )


def _approval_script(client: TestClient, h: dict[str, str]) -> str:
    resp = client.post(
        "/api/v1/automation/scripts",
        json={"name": "reboot", "body": "echo reboot", "requires_approval": True},
        headers=h,
    )
    assert resp.status_code == 201, resp.text
    script_id = resp.json()["id"]
    # the operator's requires_approval asks; only an approvals.manage holder's rule decides
    rule = client.put(
        f"/api/v1/automation/scripts/{script_id}/approval-policy",
        json={"required": True},
        headers=token_for(client, "keeper", ["admin"]),
    )
    assert rule.status_code == 200 and rule.json()["required"] is True, rule.text
    return script_id


def _execute(client: TestClient, script_id: str, h: dict[str, str]) -> dict[str, Any]:
    resp = client.post(
        f"/api/v1/automation/scripts/{script_id}/execute",
        json={"host_ids": ["box"]},
        headers=h,
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["status"] == "pending_approval"
    return resp.json()


def test_approval_flow_self_approval_and_pinned_hash(client: TestClient) -> None:
    olga = token_for(client, "olga", ["operator", "approver"])
    amy = token_for(client, "amy", ["approver"])
    script_id = _approval_script(client, olga)
    ex = _execute(client, script_id, olga)
    store = client.app.state.muster.store
    # execute opened the request, with the caller as requester
    rec = sec(client).approval_for_execution(ex["id"])
    assert rec is not None and rec.request.requester == "olga"
    approvals = client.app.state.muster.approvals
    assert approvals.open_for(store.get_execution(ex["id"])) == rec  # opened once
    # the script is edited after the request: the execution still pins the old hash
    client.post(
        "/api/v1/automation/scripts",
        json={"name": "reboot", "body": "echo CHANGED", "requires_approval": True},
        headers=olga,
    )
    pending = client.get("/api/v1/automation/approvals?status=pending", headers=amy).json()
    assert [a["id"] for a in pending["items"]] == [rec.id]
    selfish = client.post(f"/api/v1/automation/approvals/{rec.id}/approve", headers=olga)
    assert selfish.status_code == 403
    ok = client.post(f"/api/v1/automation/approvals/{rec.id}/approve", headers=amy)
    assert ok.status_code == 200 and ok.json()["status"] == "approved"
    after = store.get_execution(ex["id"])
    assert after.status.value == "queued"
    assert after.content_hash == ex["content_hash"] == rec.content_hash
    again = client.post(f"/api/v1/automation/approvals/{rec.id}/approve", headers=amy)
    assert again.status_code == 409


def test_reject_with_reason_and_deadline(client: TestClient, clock: Clock) -> None:
    olga = token_for(client, "olga", ["operator"])
    amy = token_for(client, "amy", ["approver"])
    script_id = _approval_script(client, olga)
    store = client.app.state.muster.store
    first = _execute(client, script_id, olga)
    items = client.get("/api/v1/automation/approvals?status=pending", headers=amy).json()["items"]
    assert [i["execution_id"] for i in items] == [first["id"]]
    r = client.post(
        f"/api/v1/automation/approvals/{items[0]['id']}/reject?reason=not+today", headers=amy
    )
    assert r.status_code == 200 and r.json()["reason"] == "not today"
    assert store.get_execution(first["id"]).status.value == "rejected"

    admin = token_for(client, "ada", ["admin"])
    policy = {"policy": "one_of_many", "approvers": ["role:approver"], "deadline_minutes": 5}
    url = f"/api/v1/automation/scripts/{script_id}/approval-policy"
    assert client.put(url, json=policy, headers=olga).status_code == 403
    assert client.put(url, json=policy, headers=admin).status_code == 200
    second = _execute(client, script_id, olga)
    rec = sec(client).approval_for_execution(second["id"])
    assert rec is not None and rec.request.deadline is not None
    clock.now += dt.timedelta(minutes=6)
    late = client.post(f"/api/v1/automation/approvals/{rec.id}/approve", headers=amy)
    assert late.status_code == 409 and "deadline passed" in late.text
    assert store.get_execution(second["id"]).status.value == "rejected"


def test_changes_are_audited_and_chain_verifies(client: TestClient) -> None:
    admin = token_for(client, "ada", ["admin"])
    client.post("/api/v1/hosts", json={"name": "web1", "address": "127.0.0.1"}, headers=admin)
    client.post("/api/v1/users", json={"name": "bob", "roles": ["viewer"]}, headers=admin)
    page = client.get("/api/v1/audit?user=ada", headers=admin).json()
    actions = [i["action"] for i in page["items"]]
    assert "user.create" in actions and "POST /api/v1/hosts" in actions
    assert all(i["address"] for i in page["items"])
    verify = client.get("/api/v1/audit/verify", headers=admin).json()
    assert verify["ok"] and verify["checked"] == page["total"]
    assert (
        client.get("/api/v1/audit", headers=token_for(client, "vic", ["viewer"])).status_code == 403
    )
