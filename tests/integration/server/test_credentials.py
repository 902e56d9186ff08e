"""The credentials vault: write-only over HTTP, sealed at rest and bound to its row,
used for SSH logins (host or group), rotated to a new key, and a missing key stops
the server instead of silently starting with a fresh one."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from muster.cli.main import app as cli
from muster.config import Settings
from muster.domain.secret import Secret
from muster.security.vault import VaultError
from muster.store.security_tables import credentials
from muster.store.sqlalchemy_store import open_store
from tests.fleet.sshd import SshdServer
from tests.integration.server.helpers import save_script, wait_terminal
from tests.integration.server.sshd_server import SshdApi, sshd_api  # noqa: F401


def _run(sshd: SshdApi, host: str) -> dict:
    script = save_script(sshd.api, name="whoami", shell="sh", body="id -un\n")
    started = sshd.api.post(
        f"/api/v1/automation/scripts/{script['id']}/execute", json={"host_ids": [host]}
    )
    assert started.status_code == 201, started.text
    return wait_terminal(sshd.api, started.json()["id"])


def test_write_only_sealed_and_used_for_ssh(
    sshd_api: SshdApi,  # noqa: F811
    sshd_loopback: SshdServer,
) -> None:
    api = sshd_api.api
    private = sshd_loopback.client_key.read_text()
    listed = api.get("/api/v1/credentials").json()
    assert [c["name"] for c in listed] == ["sshd-root"]
    one = api.get("/api/v1/credentials/sshd-root").json()
    assert one["fingerprint"].startswith("ssh-ed25519 SHA256:")
    for body in (str(listed), str(one)):
        assert "PRIVATE KEY" not in body and private.splitlines()[1] not in body
    engine = sshd_api.server.ctx.store.engine
    with engine.connect() as conn:
        row = conn.execute(select(credentials)).mappings().one()
    assert "PRIVATE KEY" not in row["token"] and row["key_id"] == one["key_id"]

    # the host logs in with it (no default key is configured on this server)
    done = _run(sshd_api, "sshd-a")
    assert done["status"] == "succeeded" and done["hosts"][0]["stdout_tail"] == "root\n"

    # a bad key is refused at the door; a duplicate name conflicts; in use: not deletable
    bad = api.post(
        "/api/v1/credentials", json={"name": "junk", "kind": "ssh_key", "secret": "not a key"}
    )
    assert bad.status_code == 422
    dup = api.post(
        "/api/v1/credentials", json={"name": "sshd-root", "kind": "password", "secret": "x"}
    )
    assert dup.status_code == 409
    assert api.delete("/api/v1/credentials/sshd-root").status_code == 409


def test_group_credential_and_a_wrong_one_fails_as_auth(
    sshd_api: SshdApi,  # noqa: F811
) -> None:
    api = sshd_api.api
    made = api.post(
        "/api/v1/credentials",
        json={"name": "wrong-pass", "kind": "password", "secret": "no-such-password"},
    )
    assert made.status_code == 201
    # sshd-b: no own credential, its group's is used
    assert api.patch("/api/v1/hosts/sshd-b", json={"credential_ref": None}).status_code == 200
    assert api.put("/api/v1/groups/sshd/credential", json={"credential": "sshd-root"}).json()
    ok = _run(sshd_api, "sshd-b")
    assert ok["status"] == "succeeded", ok
    api.put("/api/v1/groups/sshd/credential", json={"credential": "wrong-pass"})
    api.patch("/api/v1/hosts/sshd-a", json={"credential_ref": "wrong-pass"})
    failed = _run(sshd_api, "sshd-a")
    assert failed["status"] == "failed" and failed["hosts"][0]["reason"] == "auth_failed"
    # a row's sealed value moved onto another row no longer opens (bound by AAD)
    engine = sshd_api.server.ctx.store.engine
    with engine.begin() as conn:
        rows = {r["name"]: r for r in conn.execute(select(credentials)).mappings()}
        conn.execute(
            update(credentials)
            .where(credentials.c.name == "wrong-pass")
            .values(token=rows["sshd-root"]["token"])
        )
    with pytest.raises(VaultError):
        sshd_api.server.ctx.store.open_credential("wrong-pass")


def test_rotate_key_then_missing_key_stops_the_server(tmp_path: Path, database_url: str) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    store = open_store(settings)
    store.create_credential("db-pass", "password", Secret("pw-1"))
    old_id = store.vault.key_id
    store.close()
    runner = CliRunner()
    args = ["secrets", "rotate-key", "--data-dir", str(settings.data_dir)]
    if database_url:
        args += ["--database-url", database_url]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert settings.key_file.stat().st_mode & 0o777 == 0o600
    assert len(settings.key_file.read_text().split()) == 1  # the old key is gone
    store = open_store(settings)
    try:
        assert store.vault.key_id != old_id
        assert store.get_credential("db-pass").key_id == store.vault.key_id
        assert store.open_credential("db-pass").secret.reveal() == "pw-1"
    finally:
        store.close()
    # the key file is lost: the server refuses to start rather than mint a new key
    settings.key_file.unlink()
    with pytest.raises(VaultError, match="no key is configured"):
        open_store(settings)
    assert not settings.key_file.exists()
