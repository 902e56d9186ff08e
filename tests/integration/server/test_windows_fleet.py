"""Must-show (issue 12): a maintenance window closes mid-execution on real sshd hosts.

A running server (SQLite, its embedded worker and reaper) runs ``sleep`` on
four hosts of group ``maint`` (one real OpenSSH sshd answers them all), two
at a time (``forks=2``), under two short one-off windows:

- window 1 (close policy ``stop``) opens, two hosts start; it closes while
  they sleep: they are stopped and recorded ``cancelled`` with the window's
  reason; the two unstarted hosts wait, showing "outside maintenance window;
  next opens ..." naming window 2's opening;
- window 2 (close policy ``finish``) opens: the deferred hosts start in it,
  the window closes while they sleep, and they finish ``succeeded``.

Windows are seconds long so the whole story takes about half a minute.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.fleet.sshd import SshdServer
from tests.integration.server.harness import LiveServer, server_settings, wait_for
from tests.integration.server.helpers import save_script, wait_terminal

HOSTS = ("maint-a", "maint-b", "maint-c", "maint-d")
_W = "/api/v1/maintenance-windows"
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def api(tmp_path: Path, sshd_loopback: SshdServer) -> Iterator[httpx.Client]:
    known = sshd_loopback.write_known_hosts(tmp_path / "known_hosts")
    live = LiveServer(
        server_settings(tmp_path / "data", "", ssh_known_hosts=str(known)), localhost=False
    ).start()
    try:
        with live.client() as client:
            made = client.post(
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
                resp = client.post(
                    "/api/v1/hosts",
                    json={
                        "name": name,
                        "address": addr,
                        "port": port,
                        "credential_ref": "sshd-root",
                        "groups": ["maint"],
                        "shells": ["sh"],
                    },
                )
                assert resp.status_code == 201, resp.text
            yield client
    finally:
        live.stop()


def _window(
    api: httpx.Client, name: str, start: dt.datetime, end: dt.datetime, policy: str
) -> None:
    body = {
        "name": name,
        "kind": "extra",
        "scope": "group",
        "target": "maint",
        "timezone": "Europe/Berlin",
        "starts_at": start.isoformat(),
        "ends_at": end.isoformat(),
        "close_policy": policy,
    }
    resp = api.post(_W, json=body)
    assert resp.status_code == 201, resp.text


def _at(text: str | None) -> dt.datetime:
    assert text is not None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_window_closing_mid_execution_on_real_sshd_hosts(api: httpx.Client) -> None:
    t0 = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1)
    w1 = (t0 + dt.timedelta(seconds=2), t0 + dt.timedelta(seconds=8))
    w2 = (t0 + dt.timedelta(seconds=16), t0 + dt.timedelta(seconds=20))
    _window(api, "first", *w1, "stop")
    _window(api, "second", *w2, "finish")
    script = save_script(api, name="slow", shell="sh", body="sleep 10\necho done\n")
    resp = api.post(
        f"/api/v1/automation/scripts/{script['id']}/execute",
        json={"host_ids": list(HOSTS), "forks": 2},
    )
    assert resp.status_code == 201, resp.text
    ex_id = resp.json()["id"]

    def hosts() -> dict[str, dict[str, Any]]:
        data = api.get(f"/api/v1/automation/executions/{ex_id}").json()
        return {h["host"]: h for h in data["hosts"]}

    # Before window 1: every host waits for it, saying so.
    early = hosts()
    if dt.datetime.now(dt.UTC) < w1[0]:
        assert all(h["state"] == "queued" for h in early.values()), early

    # Window 1 closed with two hosts running: stopped; the other two deferred, visibly.
    def deferred() -> dict[str, dict[str, Any]] | None:
        now = hosts()
        waiting = [
            h
            for h in now.values()
            if h["state"] == "queued"
            and (h["waiting_reason"] or "").startswith("outside maintenance window; next opens ")
        ]
        stopped = [h for h in now.values() if h["state"] == "cancelled"]
        return now if len(waiting) == 2 and len(stopped) == 2 else None

    between = wait_for(deferred, timeout=w2[0].timestamp() - t0.timestamp() + 5, interval=0.2)
    assert dt.datetime.now(dt.UTC) < w2[0] + dt.timedelta(seconds=2), "deferral seen too late"
    w2_local = w2[0].astimezone(BERLIN)
    for h in between.values():
        if h["state"] == "cancelled":
            assert w1[0] <= _at(h["started_at"]) < w1[1]
            assert "maintenance window 'first' closed at" in h["message"], h
            assert h["reason"] == "cancelled"
        else:
            assert h["started_at"] is None
            assert h["waiting_reason"] == (
                f"outside maintenance window; next opens {w2_local:%a %H:%M %Z}"
            )

    # Window 2 (finish): the deferred hosts start in it and finish past its close.
    done = wait_terminal(api, ex_id, timeout=60)
    final = {h["host"]: h for h in done["hosts"]}
    late = [h for h in final.values() if h["state"] == "succeeded"]
    assert len(late) == 2, final
    for h in late:
        assert w2[0] <= _at(h["started_at"]) < w2[1]
        assert _at(h["finished_at"]) > w2[1]  # the window closed while it ran: it finished
        assert "done" in h["stdout_tail"]
    assert sorted(h["state"] for h in final.values()) == [
        "cancelled",
        "cancelled",
        "succeeded",
        "succeeded",
    ]
