"""Server-Sent Events framing and ``@@{json}`` extraction for live output.

Pure helpers: the live-output loop (:mod:`muster.server.output_follow`) feeds
them store chunks, and both SSE routes frame what it yields with :func:`sse`.
A structured event is a whole stdout line that starts with ``@@`` and holds a
JSON object (parsed by :class:`muster.domain.output.EventScanner`, as the
engine parses it); partial lines wait for the rest of their line.
"""

from __future__ import annotations

import json
from typing import Any

from muster.domain.output import EventScanner

__all__ = ["EventLines", "sse"]


def sse(event: str, data: Any, event_id: int | None = None) -> bytes:
    """One SSE message; data is one line of JSON (newlines escaped)."""
    text = json.dumps(data, separators=(",", ":"), default=str)
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {text}\n\n".encode()


class EventLines:
    """Per host-run ``@@`` scanners (the domain's one parser) over a live output feed."""

    def __init__(self) -> None:
        self._scanners: dict[str, EventScanner] = {}

    def feed(self, run_id: str, text: str) -> list[Any]:
        scanner = self._scanners.get(run_id)
        if scanner is None:
            scanner = self._scanners[run_id] = EventScanner()
        return list(scanner.feed(text))
