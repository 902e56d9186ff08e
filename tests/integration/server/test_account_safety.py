"""Accounts on a running server: the one-time password opens nothing but its own
change, a password change ends the other sessions, ``next`` never leaves the
site, the last admin stays, and every answer carries the browser protections."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from muster.security.passwords import Passwords
from muster.server.auth import security_store
from muster.store.security_ops import SecurityOps
from tests.integration.server.harness import LiveServer, server_settings

PW = "plum-orbit-cactus-42"
NEW_PW = "tangerine-orbit-sailboat-77"
EVIL_NEXT = [
    "/\\evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "//evil.example",
    "///evil.example",
    "https://evil.example",
    "http:evil.example",
    "javascript:alert(1)",
    "/%5Cevil.example",
    "/%2F/evil.example",
    "/%09/evil.example",
    "\\\\evil.example",
    " //evil.example",
    "evil.example",
    "/\u3000/evil.example",
    "",
]


@pytest.fixture
def live(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveServer]:
    monkeypatch.setattr(
        SecurityOps, "passwords", Passwords(time_cost=1, memory_cost=1024, parallelism=1)
    )
    server = LiveServer(
        server_settings(tmp_path / "data", database_url), embedded_worker=False
    ).start()
    try:
        yield server
    finally:
        server.stop()


def anonymous(live: LiveServer) -> httpx.Client:
    return live.client(token=None, follow_redirects=False)


@contextmanager
def session(live: LiveServer, user: str, password: str) -> Iterator[httpx.Client]:
    """A client logged in by password (session cookie, CSRF header set)."""
    with anonymous(live) as client:
        resp = client.post("/api/v1/auth/login", json={"username": user, "password": password})
        assert resp.status_code == 200, resp.text
        client.headers["X-CSRF-Token"] = resp.json()["csrf_token"]
        yield client


def new_user(live: LiveServer, name: str, roles: list[str]) -> str:
    """A user made through the API without a password: returns its one-time password."""
    with live.client() as admin:
        made = admin.post("/api/v1/users", json={"name": name, "roles": roles})
    assert made.status_code == 201, made.text
    assert made.json()["must_change_password"] is True
    return str(made.json()["one_time_password"])


# --- must_change_password ------------------------------------------------------


def test_one_time_password_session_may_only_change_the_password(live: LiveServer) -> None:
    first = new_user(live, "nia", ["admin"])
    with session(live, "nia", first) as nia:
        me = nia.get("/api/v1/auth/me")
        assert me.status_code == 200 and me.json()["must_change_password"] is True
        hosts = nia.get("/api/v1/hosts")
        assert hosts.status_code == 403
        assert "change" in hosts.json()["message"] and "password" in hosts.json()["message"]
        token = nia.post("/api/v1/tokens", json={"name": "sneaky", "ttl_days": 366})
        assert token.status_code == 403, "a token was issued before the password was changed"
        assert nia.post("/api/v1/users", json={"name": "x", "roles": ["admin"]}).status_code == 403
        page = nia.get("/scripts")
        assert page.status_code == 303
        assert page.headers["location"].startswith("/password?next=%2Fscripts")
        changed = nia.post(
            "/api/v1/auth/password", json={"current_password": first, "new_password": NEW_PW}
        )
        assert changed.status_code == 200, changed.text
        assert nia.get("/api/v1/hosts").status_code == 200
        assert nia.post("/api/v1/tokens", json={"name": "now-ok"}).status_code == 201
        assert nia.get("/api/v1/auth/me").json()["must_change_password"] is False


def test_one_time_password_token_may_only_change_the_password(live: LiveServer) -> None:
    new_user(live, "ola", ["admin"])
    issued, _ = security_store(live.app).create_token("ola", "made-by-cli")
    with live.client(token=issued.token.reveal()) as ola:
        assert ola.get("/api/v1/auth/me").status_code == 200
        assert ola.get("/api/v1/hosts").status_code == 403
        assert ola.get("/api/v1/audit").status_code == 403
        assert ola.post("/api/v1/tokens", json={"name": "x"}).status_code == 403


def test_console_password_page_changes_a_one_time_password(live: LiveServer) -> None:
    first = new_user(live, "pia", ["viewer"])
    with session(live, "pia", first) as pia:
        form = pia.get("/password", params={"next": "/hosts"})
        assert form.status_code == 200
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert csrf is not None, form.text
        fields = {
            "csrf_token": csrf.group(1),
            "current_password": first,
            "new_password": NEW_PW,
            "confirm_password": NEW_PW,
            "next": "/hosts",
        }
        wrong = pia.post("/password", data={**fields, "current_password": "nope-nope-nope"})
        assert wrong.status_code in (401, 422) and "current password" in wrong.text
        mismatch = pia.post("/password", data={**fields, "confirm_password": NEW_PW + "x"})
        assert mismatch.status_code == 422 and "do not match" in mismatch.text
        nocsrf = pia.post(
            "/password", data={**fields, "csrf_token": "forged"}, headers={"X-CSRF-Token": ""}
        )
        assert nocsrf.status_code == 403
        done = pia.post("/password", data=fields)
        assert done.status_code == 303 and done.headers["location"] == "/hosts"
        assert pia.get("/hosts").status_code == 200


# --- sessions end on a password change -------------------------------------------


def test_password_change_ends_other_sessions_and_keeps_tokens(live: LiveServer) -> None:
    security_store(live.app).create_user("ann", roles=["operator"], password=PW)
    issued, _ = security_store(live.app).create_token("ann", "ci")
    with (
        session(live, "ann", PW) as here,
        session(live, "ann", PW) as laptop,
        live.client(token=issued.token.reveal()) as ci,
    ):
        changed = here.post(
            "/api/v1/auth/password", json={"current_password": PW, "new_password": NEW_PW}
        )
        assert changed.status_code == 200, changed.text
        assert changed.json() == {"sessions_ended": 1, "tokens_revoked": 0}
        assert laptop.get("/api/v1/auth/me").status_code == 401, "another session survived"
        assert here.get("/api/v1/auth/me").status_code == 200
        assert ci.get("/api/v1/auth/me").status_code == 200
        again = here.post(
            "/api/v1/auth/password",
            json={"current_password": NEW_PW, "new_password": PW, "revoke_tokens": True},
        )
        assert again.json() == {"sessions_ended": 0, "tokens_revoked": 1}
        assert ci.get("/api/v1/auth/me").status_code == 401


def test_admin_password_reset_ends_the_users_sessions(live: LiveServer) -> None:
    security_store(live.app).create_user("bea", roles=["viewer"], password=PW)
    with session(live, "bea", PW) as bea, live.client() as admin:
        reset = admin.patch("/api/v1/users/bea", json={"password": NEW_PW})
        assert reset.status_code == 200 and reset.json()["sessions_ended"] == 1
        assert bea.get("/api/v1/auth/me").status_code == 401


# --- open redirect ---------------------------------------------------------------


def _same_origin_path(target: str) -> bool:
    parts = urlsplit(target)
    return (
        not parts.scheme
        and not parts.netloc
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in target)
    )


def _data_next(html: str) -> str:
    found = re.search(r'data-next="([^"]*)"', html)
    assert found is not None, html
    import html as html_mod

    return html_mod.unescape(found.group(1))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_next_after_login_never_leaves_the_site(live: LiveServer) -> None:
    with anonymous(live) as browser:
        for evil in EVIL_NEXT:
            page = browser.get("/login", params={"next": evil})
            assert page.status_code == 200
            target = _data_next(page.text)
            assert _same_origin_path(target), (evil, target)
        kept = browser.get("/login", params={"next": "/history?filter=failed"})
        assert _data_next(kept.text) == "/history?filter=failed"
        # the redirect to the login page keeps an innocent path and loses a hostile one
        for raw in ("//evil.example/x", "/\\evil.example"):
            sent = browser.get(raw)
            assert sent.status_code in (303, 404), (raw, sent.status_code)
            if sent.status_code == 303:
                location = sent.headers["location"]
                nxt = parse_qs(urlsplit(location).query).get("next", ["/"])[0]
                assert _same_origin_path(nxt), (raw, location)


# --- the last admin ----------------------------------------------------------------


def test_the_last_admin_cannot_demote_or_disable_themselves(live: LiveServer) -> None:
    sec = security_store(live.app)
    with live.client() as admin:
        me = admin.get("/api/v1/auth/me").json()["user"]
        # the bootstrap admin is still there: disable it so ``me`` is the only one
        assert admin.patch("/api/v1/users/admin", json={"disabled": True}).status_code == 200
        demote = admin.patch(f"/api/v1/users/{me}", json={"roles": ["viewer"]})
        assert demote.status_code == 409, demote.text
        assert "last" in demote.json()["message"] and "admin" in demote.json()["message"]
        off = admin.patch(f"/api/v1/users/{me}", json={"disabled": True})
        assert off.status_code == 409
        assert sec.get_user(me).roles == ("admin",) and not sec.get_user(me).disabled
        # with a second admin, the first may step down
        sec.create_user("deputy", roles=["admin"], password=PW)
        assert admin.patch(f"/api/v1/users/{me}", json={"roles": ["viewer"]}).status_code == 200


def _step_down_together(live: LiveServer, names: list[str], tokens: list[str]) -> list[int]:
    """Each admin demotes themselves over HTTP, both requests released at once."""
    together = threading.Barrier(len(names))

    def step_down(i: int) -> int:
        with live.client(token=tokens[i]) as me:
            me.get("/health")
            together.wait(timeout=30)
            return me.patch(f"/api/v1/users/{names[i]}", json={"roles": ["viewer"]}).status_code

    with ThreadPoolExecutor(len(names)) as pool:
        return sorted(pool.map(step_down, range(len(names))))


def test_concurrent_demotions_leave_an_admin(live: LiveServer) -> None:
    sec = security_store(live.app)
    with live.client() as admin:
        assert admin.patch("/api/v1/users/admin", json={"disabled": True}).status_code == 200
    for round_no in range(4):
        names = [f"a{round_no}x", f"a{round_no}y"]
        tokens = []
        for name in names:
            sec.create_user(name, roles=["admin"], password=PW)
            tokens.append(sec.create_token(name, "t")[0].token.reveal())
        # leave only this round's two admins enabled
        for u in sec.list_users():
            if "admin" in u.roles and not u.disabled and u.name not in names:
                sec.update_user(u.name, roles=["viewer"])
        assert _step_down_together(live, names, tokens) == [200, 409]
        admins = [u for u in sec.list_users() if "admin" in u.roles and not u.disabled]
        assert len(admins) == 1


# --- browser protections ---------------------------------------------------------


def _assert_protected(resp: httpx.Response) -> None:
    h = resp.headers
    csp = h.get("content-security-policy", "")
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ):
        assert directive in csp, (resp.request.url, csp)
    assert "unsafe-inline" not in csp
    assert h.get("x-content-type-options") == "nosniff"
    assert h.get("x-frame-options") == "DENY"
    assert h.get("referrer-policy") == "same-origin"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_answer_carries_browser_protections(live: LiveServer) -> None:
    security_store(live.app).create_user("cy", roles=["admin"], password=PW)
    with anonymous(live) as anon, session(live, "cy", PW) as cy, live.client() as api:
        responses: list[Any] = [
            anon.get("/login"),
            anon.get("/scripts"),  # 303 to the login page
            anon.get("/api/v1/hosts"),  # 401
            anon.post("/api/v1/auth/login", json={"username": "cy", "password": "wrong-1234"}),
            anon.get("/static/console.css"),
            anon.get("/health"),
            cy.get("/scripts"),
            cy.get("/hosts"),
            cy.get("/scripts/no-such-script"),  # the HTML error page
            api.get("/api/v1/hosts"),
            api.get("/api/v1/nowhere"),
        ]
        for resp in responses:
            _assert_protected(resp)
        docs = anon.get("/docs")
        assert docs.status_code == 200
        policy = docs.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "cdn.jsdelivr.net" in policy
        assert docs.headers["x-frame-options"] == "DENY"


def test_console_templates_have_no_inline_script_style_or_handlers() -> None:
    templates = Path(__file__).resolve().parents[3] / "src/muster/server/web/templates"
    for path in templates.glob("*.html"):
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), path.name
        assert not re.search(r"<style\b", text), path.name
        assert not re.search(r"\sstyle=", text), path.name
        assert not re.search(r"\son[a-z]+=", text), path.name
        assert "javascript:" not in text, path.name
