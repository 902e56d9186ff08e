"""The CLI's HTTP client for a muster server: URL and token from config or env.

The config file (``~/.config/muster/cli.json``) is written with mode 0600
because it holds a token; ``MUSTER_URL`` / ``MUSTER_TOKEN`` override it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from muster.cli.common import fail

if TYPE_CHECKING:
    import httpx

__all__ = ["ApiClient", "config_path", "load_config", "save_config"]

DEFAULT_URL = "http://127.0.0.1:8080"


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "muster" / "cli.json"


def load_config() -> dict[str, str]:
    path = config_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        data = {}
    except (OSError, ValueError) as exc:
        raise fail(f"cannot read {path}: {exc}") from exc
    return {k: str(v) for k, v in data.items() if isinstance(v, str)}


def save_config(values: dict[str, str]) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(values, fh, indent=2)
    os.chmod(path, 0o600)
    return path


class ApiClient:
    """Thin JSON client: errors from the server become one readable CLI error."""

    def __init__(self, url: str | None = None, token: str | None = None) -> None:
        cfg = load_config()
        self.url = (url or os.environ.get("MUSTER_URL") or cfg.get("url") or DEFAULT_URL).rstrip(
            "/"
        )
        import httpx  # deferred: only server-facing commands pay for it

        tok = token or os.environ.get("MUSTER_TOKEN") or cfg.get("token")
        headers = {"Authorization": f"Bearer {tok}"} if tok else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=30.0)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise fail(f"cannot reach the muster server at {self.url}: {exc}") from exc
        if resp.status_code >= 400:
            raise fail(f"{method} {path}: {resp.status_code} {_problem(resp)}")
        if resp.status_code == 204 or not resp.content:
            return None
        return resp.json()

    def stream_lines(self, path: str, headers: dict[str, str] | None = None) -> Iterator[str]:
        import httpx

        try:
            with self._http.stream("GET", path, headers=headers, timeout=None) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise fail(f"GET {path}: {resp.status_code} {_problem(resp)}")
                yield from resp.iter_lines()
        except httpx.HTTPError as exc:
            raise fail(f"stream from {self.url} broke: {exc}") from exc


def _problem(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300]
    if isinstance(body, dict):
        details = body.get("detail")
        if isinstance(details, list) and details:
            parts = [
                f"{d.get('field')}: {d.get('problem')}" if isinstance(d, dict) else str(d)
                for d in details
            ]
            return "; ".join(parts)
        return str(body.get("message") or details or body)
    return str(body)
