"""The security CLI against real servers and databases: ``muster audit verify`` catches
a record edited in the database after a server wrote it (SQLite and PostgreSQL), and
``muster login`` turns a password (a generated one must be changed) into a 0600 token."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from muster.cli.main import app as cli
from tests.integration.server.harness import LiveServer

runner = CliRunner()


def _db_opts(server: LiveServer) -> list[str]:
    s = server.settings
    return [
        "--data-dir",
        str(s.data_dir),
        "--database-url",
        s.database_url or s.effective_database_url,
    ]


def test_audit_verify_fails_after_a_direct_edit(server: LiveServer, api: httpx.Client) -> None:
    for name in ("web9", "web10"):
        assert (
            api.post("/api/v1/hosts", json={"name": name, "address": "10.0.0.9"}).status_code == 201
        )
    ok = runner.invoke(cli, ["audit", "verify", *_db_opts(server)])
    assert ok.exit_code == 0 and "2 records" in ok.output, ok.output
    with server.ctx.store.engine.begin() as conn:
        seq = conn.execute(text("SELECT min(seq) FROM audit_log")).scalar()
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = :s"), {"s": seq})
    broken = runner.invoke(cli, ["audit", "verify", *_db_opts(server)])
    assert broken.exit_code == 1, broken.output
    assert f"seq {seq}" in broken.output
    assert api.get("/api/v1/audit/verify").json()["ok"] is False


def test_login_changes_a_generated_password_and_saves_a_0600_token(
    server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    with server.client() as admin:
        made = admin.post("/api/v1/users", json={"name": "nia", "roles": ["viewer"]})
    assert made.status_code == 201 and made.json()["must_change_password"] is True
    first = made.json()["one_time_password"]
    new = "tangerine-orbit-sailboat-77"
    result = runner.invoke(
        cli, ["login", "--url", server.url, "--user", "nia"], input=f"{first}\n{new}\n{new}\n"
    )
    assert result.exit_code == 0, result.output
    cfg = tmp_path / "cfg" / "muster" / "cli.json"
    assert cfg.stat().st_mode & 0o777 == 0o600
    saved = json.loads(cfg.read_text())
    assert saved["url"] == server.url and saved["token"].startswith("mst_")
    assert first not in cfg.read_text() and new not in cfg.read_text()
    with server.client(token=saved["token"]) as nia:
        assert nia.get("/api/v1/auth/me").json()["user"] == "nia"
        assert nia.post("/api/v1/hosts", json={"name": "x"}).status_code == 403
    # the generated password no longer works; the new one does
    again = runner.invoke(cli, ["login", "--url", server.url, "--user", "nia"], input=f"{first}\n")
    assert again.exit_code != 0 and "login refused" in again.output
