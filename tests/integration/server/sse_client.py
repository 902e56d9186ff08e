"""A small Server-Sent Events reader over httpx for the tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["SseEvent", "read_events"]


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: Any
    id: int | None


def read_events(lines: Iterator[str]) -> Iterator[SseEvent]:
    event, data, eid = "message", "", None
    for line in lines:
        if line == "":
            if data:
                yield SseEvent(event, json.loads(data), eid)
            event, data, eid = "message", "", None
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()
        elif line.startswith("id:"):
            eid = int(line[3:].strip())


def stream(
    client: httpx.Client, execution_id: str, last_event_id: int | None = None
) -> Iterator[SseEvent]:
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    with client.stream(
        "GET",
        f"/api/v1/automation/executions/{execution_id}/stream",
        headers=headers,
        timeout=httpx.Timeout(30.0),
    ) as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"].startswith("text/event-stream")
        yield from read_events(resp.iter_lines())
