"""What a CLI test needs to point ``muster`` at a live server, as a user's shell would."""

from __future__ import annotations

import os
from pathlib import Path

from tests.integration.server.harness import LiveServer

__all__ = ["client_env"]


def client_env(server: LiveServer, home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without its ``MUSTER_*`` settings, logged in to
    ``server`` with its admin token, with a private config directory under ``home``
    and a wide terminal (tables are not wrapped mid-word)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUSTER_")}
    env.update(
        MUSTER_URL=server.url,
        MUSTER_TOKEN=server.admin_token,
        XDG_CONFIG_HOME=str(home / "config"),
        COLUMNS="200",
        **extra,
    )
    return env
