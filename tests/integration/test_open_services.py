"""The composition root, muster.app.open_services, on a real SQLite database.

Every process opens its store here; what it may skip is stated by its
``Needs``: the ``muster user`` / ``muster audit`` commands work where the
master key is not configured (nothing they touch is sealed), a reader creates
no key, and a store handed in is keyed like one opened here and left open for
its owner.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from muster.app import ADMIN, AUDIT_READER, SERVER, Needs, open_services
from muster.cli.main import app as cli
from muster.config import Settings
from muster.domain.secret import Secret
from muster.errors import VaultError
from muster.security.vault import generate_key
from muster.store.sqlalchemy_store import open_store

NO_TRANSPORTS = Needs(transports=False, listen=False)


def _settings(tmp_path: Path, **extra: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", **extra)  # type: ignore[arg-type]


def test_admin_commands_need_no_master_key_where_the_server_does(tmp_path: Path) -> None:
    key = generate_key()
    with open_services(_settings(tmp_path, secret_key=key), NO_TRANSPORTS) as services:
        services.store.create_credential("deploy", "password", Secret("hunter2-but-longer"))
        sealed_with = services.store.sealed_key_ids()

    # Without MUSTER_SECRET_KEY the server refuses, naming the key the database needs...
    with pytest.raises(VaultError, match=next(iter(sealed_with))):
        open_services(_settings(tmp_path), NO_TRANSPORTS)
    # ...but identities and the audit log are not sealed: the admin commands work.
    made = CliRunner().invoke(
        cli, ["user", "create", "root", "--admin", "--data-dir", str(tmp_path / "data")]
    )
    assert made.exit_code == 0, made.output
    with open_services(_settings(tmp_path), ADMIN) as services:
        assert services.vault is None
        assert services.store.get_user("root").roles == ("admin",)
        assert [c.name for c in services.store.list_credentials()] == ["deploy"]
        with pytest.raises(VaultError, match="no secret key is configured"):
            services.store.open_credential("deploy")


def test_a_reader_creates_no_key_and_writes_nothing(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with open_services(settings, AUDIT_READER) as services:
        assert services.store.verify_audit().checked == 0
        assert services.transports == {}
    assert not settings.key_file.exists()
    assert not settings.audit_key_file.exists()
    with open_services(settings, ADMIN):
        pass
    assert settings.audit_key_file.exists()  # a writer keys the log before its first record
    assert not settings.key_file.exists()  # and still needs no master key


async def test_a_store_handed_in_is_keyed_and_left_open(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    store = open_store(settings, audit_key=False, listen=False)
    try:
        services = open_services(settings, SERVER, store=store, transports={})
        assert services.store is store and not services.owns_store
        assert settings.audit_key_file.exists()
        await services.aclose()
        # Still usable: the caller owns it.
        store.record_audit(actor="t", action="test.ping", target="store")
        assert store.verify_audit().ok
    finally:
        store.close()
