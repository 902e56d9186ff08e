"""Server-Sent Events framing and ``@@{json}`` extraction for live output.

Pure helpers: the stream router feeds them store chunks and writes what they
return. A structured event is a whole stdout line that starts with ``@@``
and holds a JSON object; partial lines wait for the rest of their line.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["EventLines", "sse"]


def sse(event: str, data: Any, event_id: int | None = None) -> bytes:
    """One SSE message; data is one line of JSON (newlines escaped)."""
    text = json.dumps(data, separators=(",", ":"), default=str)
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {text}\n\n".encode()


class EventLines:
    """Per host-run line buffers that yield the ``@@`` JSON objects completed by a chunk."""

    _MAX_PENDING = 64 * 1024

    def __init__(self) -> None:
        self._pending: dict[str, str] = {}

    def feed(self, run_id: str, text: str) -> list[Any]:
        buffered = self._pending.get(run_id, "") + text
        lines = buffered.split("\n")
        rest = lines.pop()
        # A line longer than the cap is not an event: drop it rather than grow.
        self._pending[run_id] = rest if len(rest) <= self._MAX_PENDING else ""
        found: list[Any] = []
        for line in lines:
            line = line.rstrip("\r")
            if not line.startswith("@@"):
                continue
            try:
                value = json.loads(line[2:])
            except ValueError:
                continue
            if isinstance(value, dict):
                found.append(value)
        return found
