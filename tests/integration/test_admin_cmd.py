"""``muster user`` and ``muster audit`` against a real SQLite database file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from muster.cli.audit_cmd import EXIT_CHAIN_BROKEN, audit_app
from muster.cli.user_cmd import user_app
from muster.config import Settings
from muster.store.sqlalchemy_store import SqlStore, open_store

cli = typer.Typer()
cli.add_typer(user_app, name="user")
cli.add_typer(audit_app, name="audit")
runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> tuple[Path, list[str]]:
    path = tmp_path / "muster.db"
    # The data directory holds the audit key, beside the database.
    return path, ["--data-dir", str(tmp_path), "--database-url", f"sqlite:///{path}"]


def _store(path: Path) -> SqlStore:
    return open_store(
        Settings(data_dir=path.parent, database_url=f"sqlite:///{path}"),  # type: ignore[call-arg]
        open_vault=False,
    )


def test_create_admin_prints_a_one_time_password_that_works(db) -> None:
    path, opts = db
    result = runner.invoke(cli, ["user", "create", "root", "--admin", *opts])
    assert result.exit_code == 0, result.output
    password = result.output.strip().splitlines()[-1]
    assert len(password) == 24
    store = _store(path)
    try:
        who = store.authenticate_password("root", password)
        assert who.roles == ("admin",)
        assert store.get_user("root").must_change_password
    finally:
        store.close()
    again = runner.invoke(cli, ["user", "create", "root", "--admin", *opts])
    assert again.exit_code == 2 and "already exists" in again.output


def test_create_with_password_stdin_and_policy(db) -> None:
    _, opts = db
    weak = runner.invoke(
        cli, ["user", "create", "ann", "-r", "viewer", "--password-stdin", *opts], input="short\n"
    )
    assert weak.exit_code == 2 and "at least 12" in weak.output
    ok = runner.invoke(
        cli,
        ["user", "create", "ann", "-r", "viewer", "--password-stdin", *opts],
        input="plum-orbit-cactus-42\n",
    )
    assert ok.exit_code == 0 and "plum-orbit" not in ok.output
    listed = runner.invoke(cli, ["user", "list", *opts])
    assert "ann" in listed.output and "viewer" in listed.output


def test_create_needs_a_role(db) -> None:
    _, opts = db
    result = runner.invoke(cli, ["user", "create", "ann", *opts])
    assert result.exit_code == 2 and "role" in result.output


def test_token_is_printed_once_and_authenticates(db) -> None:
    path, opts = db
    runner.invoke(cli, ["user", "create", "ann", "-r", "operator", *opts])
    result = runner.invoke(cli, ["user", "token", "ann", "--ttl", "1d", "--role", "viewer", *opts])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("mst_")
    store = _store(path)
    try:
        assert store.authenticate_token(token).token_role == "viewer"
    finally:
        store.close()
    bad = runner.invoke(cli, ["user", "token", "ann", "--ttl", "999d", *opts])
    assert bad.exit_code == 2 and "ttl" in bad.output


def test_audit_verify_fails_after_a_direct_edit(db) -> None:
    path, opts = db
    runner.invoke(cli, ["audit", "verify", *opts])  # migrates an empty database
    store = _store(path)
    try:
        for i in range(5):
            store.record_audit(actor="ann", action="script.execute", target=f"s:{i}")
    finally:
        store.close()
    ok = runner.invoke(cli, ["audit", "verify", *opts])
    assert ok.exit_code == 0 and "5 records" in ok.output
    anchor = ok.output.split("newest ")[1].split()[0]

    listed = runner.invoke(cli, ["audit", "list", "--user", "ann", "--json", *opts])
    assert listed.exit_code == 0 and len(listed.output.strip().splitlines()) == 5

    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE audit_log SET target = 's:99' WHERE seq = 2")
    broken = runner.invoke(cli, ["audit", "verify", *opts])
    assert broken.exit_code == EXIT_CHAIN_BROKEN
    assert "seq 2" in broken.output and "edited" in broken.output

    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE audit_log SET target = 's:1' WHERE seq = 2")
        conn.execute("DELETE FROM audit_log WHERE seq = 5")
    assert runner.invoke(cli, ["audit", "verify", *opts]).exit_code == 0
    truncated = runner.invoke(cli, ["audit", "verify", "--anchor", anchor, *opts])
    assert truncated.exit_code == EXIT_CHAIN_BROKEN and "newest records" in truncated.output
    assert "seq 5" in truncated.output


def test_audit_anchor_file_round_trip(db, tmp_path: Path) -> None:
    path, opts = db
    empty = runner.invoke(cli, ["audit", "anchor", *opts])
    assert empty.exit_code == 2 and "empty" in empty.output
    store = _store(path)
    try:
        for i in range(3):
            store.record_audit(actor="ann", action="script.execute", target=f"s:{i}")
    finally:
        store.close()
    printed = runner.invoke(cli, ["audit", "anchor", *opts])
    assert printed.exit_code == 0 and '"seq": 3' in printed.output, printed.output
    kept = tmp_path / "anchor.json"
    assert runner.invoke(cli, ["audit", "anchor", "-o", str(kept), *opts]).exit_code == 0
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE audit_log SET actor = 'eve' WHERE seq = 3")
    refused = runner.invoke(cli, ["audit", "anchor", "-o", str(tmp_path / "x.json"), *opts])
    assert refused.exit_code == EXIT_CHAIN_BROKEN and "seq 3" in refused.output
    assert not (tmp_path / "x.json").exists()  # a broken chain is never anchored
    broken = runner.invoke(cli, ["audit", "verify", "--anchor", str(kept), *opts])
    assert broken.exit_code == EXIT_CHAIN_BROKEN and "seq 3" in broken.output
    kept.write_text("{not json")
    bad = runner.invoke(cli, ["audit", "verify", "--anchor", str(kept), *opts])
    assert bad.exit_code == 2 and "not an anchor file" in " ".join(bad.output.split())


def test_audit_verify_rejects_malformed_anchor(db) -> None:
    _, opts = db
    result = runner.invoke(cli, ["audit", "verify", "--anchor", "x", *opts])
    assert result.exit_code == 2
