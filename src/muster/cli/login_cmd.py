"""``muster login`` (a CLI token from a server) and ``muster secrets rotate-key``.

``login`` asks for a user and password, logs in once, creates an API token
for the CLI and saves URL and token in ``~/.config/muster/cli.json`` (mode
0600); the password is never stored. A user whose password was generated
must pick a new one first.

``secrets rotate-key`` opens the server's database directly. With a key
file it writes a new key first (keeping the old one readable on the next
line, so running servers pick both up), re-seals every credential, secret
parameter and webhook secret in batches, then drops the old key. With
``MUSTER_SECRET_KEY`` the keys live outside muster: it re-seals under the
configured key everything sealed by the keys in ``MUSTER_OLD_SECRET_KEYS``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from muster.cli.client import save_config
from muster.cli.common import fail
from muster.config import Settings

__all__ = ["login", "secrets_app"]

secrets_app = typer.Typer(help="The master key that seals stored secrets.", no_args_is_help=True)


def login(
    url: Annotated[str, typer.Option("--url", help="The server, e.g. http://127.0.0.1:8080")],
    user: Annotated[str | None, typer.Option("--user", "-u", help="Login name.")] = None,
    token_name: Annotated[str, typer.Option("--token-name", help="Label of the token.")] = "cli",
    ttl_days: Annotated[float, typer.Option("--ttl-days", help="Token lifetime.")] = 90,
) -> None:
    """Log in, create an API token and save it (0600) for the other commands."""
    import httpx

    user = user or typer.prompt("user")
    password = typer.prompt("password", hide_input=True)
    base = url.rstrip("/")
    with httpx.Client(base_url=base, timeout=30) as http:
        try:
            resp = http.post("/api/v1/auth/login", json={"username": user, "password": password})
        except httpx.HTTPError as exc:
            raise fail(f"cannot reach the muster server at {base}: {exc}") from exc
        if resp.status_code != 200:
            raise fail(f"login refused: {_message(resp)}")
        body = resp.json()
        headers = {"x-csrf-token": body["csrf_token"]}
        if body.get("must_change_password"):
            typer.echo("this password was generated for one use: choose a new one")
            new = typer.prompt("new password", hide_input=True, confirmation_prompt=True)
            changed = http.post(
                "/api/v1/auth/password",
                json={"current_password": password, "new_password": new},
                headers=headers,
            )
            if changed.status_code not in (200, 204):
                raise fail(f"password change refused: {_message(changed)}")
        made = http.post(
            "/api/v1/tokens", json={"name": token_name, "ttl_days": ttl_days}, headers=headers
        )
        if made.status_code != 201:
            raise fail(f"could not create a token: {_message(made)}")
        token = made.json()["token"]
        http.post("/api/v1/auth/logout", headers=headers)
    path = save_config({"url": base, "token": token})
    typer.echo(f"logged in to {base} as {user}; token saved in {path} (mode 0600)")


def _message(resp: Any) -> str:
    try:
        return str(resp.json().get("message") or resp.text)
    except ValueError:
        return f"{resp.status_code} {resp.text[:200]}"


@secrets_app.command("rotate-key")
def rotate_key(
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="The server's data directory.")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="The server's database.")
    ] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, max=10000, help="Rows per pass.")] = 200,
) -> None:
    """Re-encrypt every stored secret under a new master key, in batches."""
    from muster.security.vault import (
        Vault,
        VaultError,
        generate_key,
        load_keyring,
        write_key_file,
    )
    from muster.store._core import make_engine
    from muster.store.credential_store import CredentialStore
    from muster.store.migrations import upgrade

    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if database_url is not None:
        overrides["database_url"] = database_url
    settings = Settings(**overrides)
    explicit = settings.secret_key.get_secret_value()
    old_env = settings.old_secret_keys.get_secret_value()
    try:
        engine = make_engine(settings.effective_database_url)
        upgrade(engine)
        key, older = load_keyring(explicit, settings.key_file, old=old_env, create=False)
    except VaultError as exc:
        raise fail(str(exc)) from exc
    except Exception as exc:
        raise fail(f"cannot open the database: {exc}") from exc
    try:
        if explicit:
            vault = Vault(key, older)
            if not older:
                typer.echo(
                    "MUSTER_SECRET_KEY is set, so the keys live outside muster. To rotate:\n"
                    f"  1. restart servers and workers with MUSTER_SECRET_KEY={generate_key()}\n"
                    "     and MUSTER_OLD_SECRET_KEYS=<the current key>\n"
                    "  2. run `muster secrets rotate-key` with the same two variables\n"
                    "  3. drop MUSTER_OLD_SECRET_KEYS and restart"
                )
                raise typer.Exit(2)
            moved = _reseal(CredentialStore(engine, vault=vault), batch)
            typer.echo(f"re-sealed {moved} secrets under key {vault.key_id}")
            return
        texts = [_text(k) for k in [key, *older]]
        new = generate_key()
        write_key_file(settings.key_file, [new, *texts])
        vault = Vault(_decode(new), [key, *older])
        store = CredentialStore(engine, vault=vault)
        moved = _reseal(store, batch)
        write_key_file(settings.key_file, [new])
        moved += _reseal(store, batch)  # anything sealed with the old key meanwhile
        left = store.sealed_key_ids() - {vault.key_id}
        if left:
            raise fail(f"secrets still sealed with {', '.join(sorted(left))}: run again")
        typer.echo(f"re-sealed {moved} secrets; the key file now holds only key {vault.key_id}")
    finally:
        engine.dispose()


def _reseal(store: Any, batch: int) -> int:
    total = 0
    while True:
        moved = int(store.rekey(batch))
        total += moved
        if moved:
            typer.echo(f"  re-sealed {total} so far")
        else:
            return total


def _text(key: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(key).decode("ascii")


def _decode(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text.encode("ascii"))
