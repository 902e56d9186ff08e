"""``muster secrets rotate-key``: a new master key for the secrets a server stores.

It opens the server's database directly and runs
:mod:`muster.services.keys`. With a key file it writes a new key first
(keeping the old one readable on the next line, so running servers pick both
up), re-seals every credential, secret parameter and webhook secret in
batches, then drops the old key. With ``MUSTER_SECRET_KEY`` the keys live
outside muster: it re-seals under the configured key everything sealed by the
keys in ``MUSTER_OLD_SECRET_KEYS``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from muster.cli.common import fail
from muster.config import Settings

__all__ = ["secrets_app"]

secrets_app = typer.Typer(help="The master key that seals stored secrets.", no_args_is_help=True)


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
    from muster.app import KEY_ROTATION, open_services
    from muster.security.vault import VaultError, generate_key, load_keyring
    from muster.services.keys import OldKeysNeeded, reseal_under, rotate_key_file

    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if database_url is not None:
        overrides["database_url"] = database_url
    settings = Settings(**overrides)
    explicit = settings.secret_key.get_secret_value()
    try:
        # The store's own vault would refuse keys still being rotated; this command
        # brings the keyring it rotates (and writes no audit record).
        store = open_services(settings, KEY_ROTATION).store
    except Exception as exc:
        raise fail(f"cannot open the database: {exc}") from exc
    try:
        key, older = load_keyring(
            explicit,
            settings.key_file,
            old=settings.old_secret_keys.get_secret_value(),
            create=False,
        )
        if explicit:
            done = reseal_under(store, key, older, batch=batch, progress=_progress)
            typer.echo(f"re-sealed {done.moved} secrets under key {done.key_id}")
        else:
            done = rotate_key_file(
                store, settings.key_file, key, older, batch=batch, progress=_progress
            )
            typer.echo(
                f"re-sealed {done.moved} secrets; the key file now holds only key {done.key_id}"
            )
    except OldKeysNeeded:
        typer.echo(
            "MUSTER_SECRET_KEY is set, so the keys live outside muster. To rotate:\n"
            f"  1. restart servers and workers with MUSTER_SECRET_KEY={generate_key()}\n"
            "     and MUSTER_OLD_SECRET_KEYS=<the current key>\n"
            "  2. run `muster secrets rotate-key` with the same two variables\n"
            "  3. drop MUSTER_OLD_SECRET_KEYS and restart"
        )
        raise typer.Exit(2) from None
    except VaultError as exc:
        raise fail(str(exc)) from exc
    finally:
        store.close()


def _progress(total: int) -> None:
    typer.echo(f"  re-sealed {total} so far")
