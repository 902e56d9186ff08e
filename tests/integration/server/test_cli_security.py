"""The security CLI against real servers and databases: ``muster audit verify`` catches
a record edited in the database after a server wrote it (SQLite and PostgreSQL), and
``muster login`` turns a password (a generated one must be changed) into a 0600 token."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, delete, func, select, text, update
from typer.testing import CliRunner, Result

from muster.cli.main import app as cli
from muster.security.audit import AuditKeyError
from muster.store.security_tables import audit_log
from muster.store.sqlalchemy_store import open_store
from tests.integration.server.harness import LiveServer, server_settings, wait_for

runner = CliRunner()


def _db_opts(server: LiveServer) -> list[str]:
    s = server.settings
    return [
        "--data-dir",
        str(s.data_dir),
        "--database-url",
        s.database_url or s.effective_database_url,
    ]


def _flat(result: Result) -> str:
    """The command's output on one line: error messages wrap at the terminal width."""
    return " ".join(result.output.split())


def _audited(server: LiveServer, n: int) -> None:
    """Wait until ``n`` audit records exist: a request's record commits just after its
    response has been sent."""

    def count() -> bool:
        with server.ctx.store.engine.connect() as conn:
            return bool(conn.execute(select(func.count()).select_from(audit_log)).scalar_one() >= n)

    wait_for(count, timeout=30, what=f"{n} audit records")


def test_audit_verify_fails_after_a_direct_edit(server: LiveServer, api: httpx.Client) -> None:
    for name in ("web9", "web10"):
        assert (
            api.post("/api/v1/hosts", json={"name": name, "address": "10.0.0.9"}).status_code == 201
        )
    _audited(server, 2)
    ok = runner.invoke(cli, ["audit", "verify", *_db_opts(server)])
    assert ok.exit_code == 0 and "2 records" in ok.output, ok.output
    with server.ctx.store.engine.begin() as conn:
        seq = conn.execute(text("SELECT min(seq) FROM audit_log")).scalar()
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = :s"), {"s": seq})
    broken = runner.invoke(cli, ["audit", "verify", *_db_opts(server)])
    assert broken.exit_code == 1, broken.output
    assert f"seq {seq}" in broken.output
    assert api.get("/api/v1/audit/verify").json()["ok"] is False


def _rebuild_with_plain_sha256(engine: Engine, *, actor: str | None = None) -> int:
    """What an attacker with write access to the database (and not the data
    directory) does: rewrite a record, then recompute every hash after it the
    way the chain was once built, SHA-256 of the previous hash and the record's
    canonical JSON, dropping any key id so the records pass for unkeyed ones.
    With ``actor=None`` nothing is edited: the log as a server from before keyed
    audit wrote it. Returns the seq of the first record."""
    with engine.begin() as conn:
        rows = [
            dict(r) for r in conn.execute(select(audit_log).order_by(audit_log.c.seq)).mappings()
        ]
        prev = "0" * 64
        for i, row in enumerate(rows):
            if i == 0 and actor is not None:
                row["actor"] = actor
            at = row["at"] if row["at"].tzinfo else row["at"].replace(tzinfo=dt.UTC)
            body = {
                "seq": row["seq"],
                "at": at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "actor": row["actor"],
                "action": row["action"],
                "target": row["target"],
                "address": row["address"],
                "details": row["details"],
                "prev_hash": prev,
            }
            canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            digest = hashlib.sha256(prev.encode() + canon.encode()).hexdigest()
            changes = {"actor": row["actor"], "prev_hash": prev, "hash": digest}
            if "key_id" in row:
                changes["key_id"] = None
            conn.execute(update(audit_log).where(audit_log.c.seq == row["seq"]).values(**changes))
            prev = digest
        return int(rows[0]["seq"])


def test_audit_verify_fails_after_the_chain_is_rebuilt_without_the_key(
    server: LiveServer, api: httpx.Client
) -> None:
    for name in ("web11", "web12", "web13"):
        assert api.post("/api/v1/hosts", json={"name": name}).status_code == 201
    _audited(server, 3)
    assert runner.invoke(cli, ["audit", "verify", *_db_opts(server)]).exit_code == 0
    _rebuild_with_plain_sha256(server.ctx.store.engine, actor="mallory")
    broken = runner.invoke(cli, ["audit", "verify", *_db_opts(server)])
    assert broken.exit_code == 1, broken.output
    assert "unkeyed" in _flat(broken) and "seq" in _flat(broken), broken.output
    verdict = api.get("/api/v1/audit/verify").json()
    assert verdict["ok"] is False, verdict


def test_exported_anchor_catches_truncation_and_a_rewrite_with_the_key(
    server: LiveServer, api: httpx.Client, tmp_path: Path
) -> None:
    for name in ("web21", "web22", "web23", "web24"):
        assert api.post("/api/v1/hosts", json={"name": name}).status_code == 201
    _audited(server, 4)
    anchor_file = tmp_path / "kept-elsewhere" / "audit.anchor"
    anchor_file.parent.mkdir()
    made = runner.invoke(cli, ["audit", "anchor", "-o", str(anchor_file), *_db_opts(server)])
    assert made.exit_code == 0, made.output
    anchor = json.loads(anchor_file.read_text())
    assert api.post("/api/v1/hosts", json={"name": "web25"}).status_code == 201  # chain grows
    _audited(server, 5)
    ok = runner.invoke(cli, ["audit", "verify", "--anchor", str(anchor_file), *_db_opts(server)])
    assert ok.exit_code == 0 and "1 anchor(s) found intact" in _flat(ok), ok.output
    pinned = f"{anchor['seq']}:{anchor['hash']}"
    assert api.get("/api/v1/audit/verify", params={"anchor": pinned}).json()["anchors_found"] == 1

    # Someone holding the key rewrites the anchored record: the chain is valid again...
    sec = server.ctx.store
    with server.ctx.store.engine.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq >= anchor["seq"]))
    sec.record_audit(actor="mallory", action="host.create", target="host:web24")
    assert runner.invoke(cli, ["audit", "verify", *_db_opts(server)]).exit_code == 0
    # ...but not the record that was anchored.
    rewritten = runner.invoke(
        cli, ["audit", "verify", "--anchor", str(anchor_file), *_db_opts(server)]
    )
    assert rewritten.exit_code == 1, rewritten.output
    assert f"seq {anchor['seq']}" in _flat(rewritten) and "anchor" in _flat(rewritten)
    verdict = api.get("/api/v1/audit/verify", params={"anchor": pinned}).json()
    assert verdict["ok"] is False and verdict["first_bad_seq"] == anchor["seq"]

    # Truncation below the anchor: named as the newest records removed.
    with server.ctx.store.engine.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq >= anchor["seq"]))
    cut = runner.invoke(cli, ["audit", "verify", "--anchor", pinned, *_db_opts(server)])
    assert cut.exit_code == 1 and "newest records removed" in _flat(cut), cut.output
    bad = runner.invoke(cli, ["audit", "verify", "--anchor", "nonsense", *_db_opts(server)])
    assert bad.exit_code == 2 and "SEQ:HASH" in _flat(bad)
    assert api.get("/api/v1/audit/verify", params={"anchor": "1:x"}).status_code == 422


def test_missing_audit_key_is_a_clear_error(server: LiveServer, api: httpx.Client) -> None:
    assert api.post("/api/v1/hosts", json={"name": "web31"}).status_code == 201
    _audited(server, 1)
    key_file = server.settings.audit_key_file
    assert key_file.stat().st_mode & 0o777 == 0o600
    saved = key_file.read_bytes()
    key_file.unlink()
    try:
        result = runner.invoke(cli, ["audit", "verify", *_db_opts(server)])
        assert result.exit_code == 2, result.output
        assert "no audit key is configured" in _flat(result) and "MUSTER_AUDIT_KEY" in _flat(result)
        with pytest.raises(AuditKeyError, match="no audit key is configured"):
            open_store(server.settings, listen=False)
        assert not key_file.exists()  # nothing silently made up in its place
    finally:
        key_file.write_bytes(saved)
        key_file.chmod(0o600)


def test_a_log_from_before_keyed_audit_is_sealed_once(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = server_settings(tmp_path / "data", database_url)
    old = LiveServer(settings).start()
    try:
        with old.client() as api:
            for name in ("web41", "web42"):
                assert api.post("/api/v1/hosts", json={"name": name}).status_code == 201
        _audited(old, 2)
        engine = old.ctx.store.engine
        # The log as a server from before keyed audit left it: SHA-256 only, no key file.
        _rebuild_with_plain_sha256(engine)
        with engine.connect() as conn:
            legacy = conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
    finally:
        old.stop()
    settings.audit_key_file.unlink()
    opts = ["--data-dir", str(settings.data_dir), "--database-url", settings.effective_database_url]
    before = runner.invoke(cli, ["audit", "verify", *opts])
    assert before.exit_code == 0 and f"{legacy} unkeyed" in _flat(before), before.output

    # A key given by environment cannot tell the switch from a rewrite: writers stop...
    monkeypatch.setenv("MUSTER_AUDIT_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())
    with pytest.raises(AuditKeyError, match="seal-legacy"):
        open_store(server_settings(tmp_path / "data", database_url), listen=False)
    unsealed = runner.invoke(cli, ["audit", "verify", *opts])
    assert unsealed.exit_code == 1 and "seal-legacy" in _flat(unsealed), unsealed.output
    # ...until the operator seals the checked records once.
    monkeypatch.delenv("MUSTER_AUDIT_KEY")
    # With the key file: the first start creates the key and writes the switch itself.
    new = LiveServer(server_settings(tmp_path / "data", database_url)).start()
    try:
        assert settings.audit_key_file.stat().st_mode & 0o777 == 0o600
        with new.client() as api:
            assert api.post("/api/v1/hosts", json={"name": "web43"}).status_code == 201
            verdict = api.get("/api/v1/audit/verify").json()
            assert verdict["ok"] is True and verdict["legacy"] == legacy, verdict
            switch = api.get("/api/v1/audit", params={"action": "audit.keyed"}).json()["items"]
            assert [r["seq"] for r in switch] == [legacy + 1]
        after = runner.invoke(cli, ["audit", "verify", *opts])
        assert after.exit_code == 0 and f"{legacy} unkeyed" in _flat(after), after.output
        # Editing a sealed legacy record now breaks the switch record's HMAC.
        with new.ctx.store.engine.begin() as conn:
            conn.execute(update(audit_log).where(audit_log.c.seq == 1).values(actor="mallory"))
        _rebuild_with_plain_sha256(new.ctx.store.engine, actor="mallory")
        broken = runner.invoke(cli, ["audit", "verify", *opts])
        assert broken.exit_code == 1, broken.output
    finally:
        new.stop()


def test_seal_legacy_with_a_key_from_the_environment(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = server_settings(tmp_path / "data", database_url)
    old = LiveServer(settings).start()
    try:
        with old.client() as api:
            assert api.post("/api/v1/hosts", json={"name": "web51"}).status_code == 201
        _audited(old, 1)
        _rebuild_with_plain_sha256(old.ctx.store.engine)
    finally:
        old.stop()
    settings.audit_key_file.unlink()
    monkeypatch.setenv("MUSTER_AUDIT_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())
    opts = ["--data-dir", str(settings.data_dir), "--database-url", settings.effective_database_url]
    sealed = runner.invoke(cli, ["audit", "seal-legacy", *opts])
    assert sealed.exit_code == 0 and "switch record" in _flat(sealed), sealed.output
    again = runner.invoke(cli, ["audit", "seal-legacy", *opts])
    assert again.exit_code == 2 and "nothing to seal" in _flat(again)
    assert runner.invoke(cli, ["audit", "verify", *opts]).exit_code == 0
    assert not settings.audit_key_file.exists()  # the key stays where the operator keeps it
    new = LiveServer(server_settings(tmp_path / "data", database_url)).start()
    try:
        with new.client() as api:
            assert api.post("/api/v1/hosts", json={"name": "web52"}).status_code == 201
            assert api.get("/api/v1/audit/verify").json()["ok"] is True
    finally:
        new.stop()


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
