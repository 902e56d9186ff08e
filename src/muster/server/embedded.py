"""The worker embedded in ``muster serve``: adapter from the worker package to the API."""

from __future__ import annotations

import logging
from typing import Any

from muster.server.context import ServerContext

__all__ = ["start_embedded_worker"]

_log = logging.getLogger(__name__)


def start_embedded_worker(ctx: ServerContext) -> Any:
    try:
        from muster.worker import Worker  # type: ignore[attr-defined]
    except ImportError:
        _log.warning("no worker available: host runs stay queued")
        return None
    return Worker  # replaced once the worker package lands
