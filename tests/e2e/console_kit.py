"""What the console's browser tests share: one live server with a user per role,
Debian's Chromium, logged-in browser contexts, screenshots.

A module builds its server once (``console_server``) and its browser once
(``chromium``); every test opens a fresh context logged in as the user it
needs, so "as a user with the right role and as one without" is two contexts
on the same server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from muster.app import SshOptions, default_transports
from muster.server.embedded import embedded_worker_factory
from muster.testing.simfleet import SimFleet
from tests.integration.server.conftest import register_fleet
from tests.integration.server.harness import LiveServer, server_settings

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "console-Roles-pass-42!"
#: One user per built-in role, and one with no role at all.
USERS = {
    "ada": ["admin"],
    "otto": ["operator"],
    "vera": ["viewer"],
    "apo": ["approver"],
    "nobody": [],
}
WIDE = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


def start_server(tmp: Path, fleet: SimFleet, **settings: Any) -> LiveServer:
    """A real server (SQLite, embedded worker, auth on) with ``localhost``, the
    simulated fleet in group ``web`` and the users of :data:`USERS`; ``settings``
    go to :func:`server_settings`."""
    from muster.server.auth import security_store

    transports = default_transports(SshOptions(known_hosts=str(fleet.known_hosts_path)))
    live = LiveServer(
        server_settings(tmp / "data", **settings),
        localhost=True,
        worker_factory=embedded_worker_factory(transports),
    ).start()
    for name, roles in USERS.items():
        security_store(live.app).create_user(name, roles=roles, password=PASSWORD)
    with api_as(live, "ada") as api:
        register_fleet(api, fleet)
    return live


@contextmanager
def api_as(live: LiveServer, user: str) -> Iterator[httpx.Client]:
    """An API client logged in as ``user`` (session cookie and CSRF header)."""
    with live.client(token=None) as client:
        resp = client.post("/api/v1/auth/login", json={"username": user, "password": PASSWORD})
        assert resp.status_code == 200, resp.text
        client.headers["X-CSRF-Token"] = resp.json()["csrf_token"]
        yield client


def make_script(live: LiveServer, body: dict[str, Any], user: str = "ada") -> dict[str, Any]:
    with api_as(live, user) as api:
        resp = api.post("/api/v1/automation/scripts", json={"shell": "sh", **body})
        assert resp.status_code in (200, 201), resp.text
        return resp.json()  # type: ignore[no-any-return]


def execute(
    live: LiveServer, script_id: str, hosts: list[str], user: str = "ada", **values: Any
) -> dict[str, Any]:
    with api_as(live, user) as api:
        resp = api.post(
            f"/api/v1/automation/scripts/{script_id}/execute",
            json={"host_ids": hosts, "parameter_values": values},
        )
        assert resp.status_code in (200, 201, 202), resp.text
        return resp.json()  # type: ignore[no-any-return]


def watch(tab: Any) -> list[str]:
    """Collects JavaScript errors, policy refusals and failed loads (a missing
    favicon included) of a tab; the test asserts the list stays empty."""
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(f"js: {exc}"))
    tab.on(
        "console",
        lambda msg: (
            problems.append(f"csp: {msg.text}") if "Content Security Policy" in msg.text else None
        ),
    )
    tab.on(
        "response",
        lambda r: (
            problems.append(f"{r.status} {r.url}")
            if r.status == 404 and r.request.resource_type != "document"
            else None
        ),
    )
    return problems


def shot(tab: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
