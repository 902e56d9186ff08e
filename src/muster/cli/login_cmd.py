"""``muster login``: a CLI token from a server.

``login`` asks for a user and password, logs in once, creates an API token
for the CLI and saves URL and token in ``~/.config/muster/cli.json`` (mode
0600); the password is never stored. A user whose password was generated
must pick a new one first.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from muster.cli.client import save_config
from muster.cli.common import fail

__all__ = ["login"]


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
