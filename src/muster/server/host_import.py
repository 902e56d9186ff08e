"""Host inventory import: parse within caps, check every name, store in stoppable batches.

The parse is linear and capped (``max_import_bytes`` at the door,
``max_import_hosts`` and the derived entry and variable caps here), so it
ends in bounded time; the store writes in batches and asks between them
whether to go on, so a client that left or a stopping server never keeps a
thread importing for nobody.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

import anyio.from_thread
from fastapi import Request

from muster.config import Settings
from muster.domain.hostnames import host_name_problem
from muster.domain.hosts import Host
from muster.domain.inventory import Inventory, InventoryLimits
from muster.domain.inventory_formats import parse_ansible_ini, parse_ansible_yaml, parse_ssh_config
from muster.engine.inventory_files import detect_format
from muster.errors import InventoryError, ValidationError
from muster.server.context import ServerContext
from muster.server.schemas.hosts import ImportIn

__all__ = ["ENTRIES_PER_HOST", "VALUES_PER_HOST", "import_limits", "parse_import", "stop_check"]

#: Host names listed per allowed host (a host on several lines counts once per line).
ENTRIES_PER_HOST: Final = 10
#: Variables per allowed host, once group variables are copied to their members.
VALUES_PER_HOST: Final = 50
_SOURCE: Final = "upload"
_PARSERS: Final[dict[str, Callable[[str, str, InventoryLimits], Inventory]]] = {
    "ini": parse_ansible_ini,
    "yaml": parse_ansible_yaml,
    "ssh_config": parse_ssh_config,
}


def import_limits(settings: Settings) -> InventoryLimits:
    hosts = settings.max_import_hosts
    return InventoryLimits(
        max_hosts=hosts, max_entries=hosts * ENTRIES_PER_HOST, max_values=hosts * VALUES_PER_HOST
    )


def parse_import(body: ImportIn, settings: Settings) -> list[Host]:
    """The resolved hosts of an upload, or ValidationError (field ``content``) naming
    the line, the limit or the bad host name."""
    fmt: str = body.format
    if fmt == "auto":
        fmt = detect_format(Path("inventory"), body.content)
    try:
        hosts = _PARSERS[fmt](body.content, _SOURCE, import_limits(settings)).all_hosts()
    except InventoryError as exc:
        raise ValidationError(exc.message, field="content") from exc
    if not hosts:
        raise ValidationError("the inventory defines no host", field="content")
    for host in hosts:
        problem = host_name_problem(host.name)
        if problem is not None:
            raise ValidationError(f"{_SOURCE}: {problem}", field="content")
    return hosts


def stop_check(request: Request, ctx: ServerContext) -> Callable[[], bool]:
    """For a sync route (run in a worker thread): true once the client has gone or the
    server is stopping. Asked between store batches."""
    stopping = ctx.stopping

    def should_stop() -> bool:
        if stopping.is_set():
            return True
        try:
            return bool(anyio.from_thread.run(request.is_disconnected))
        except Exception:  # the event loop is gone: the server stopped
            return True

    return should_stop
