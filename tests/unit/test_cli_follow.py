"""``exec start --follow`` reads the server's event stream into the human report. The
server reads host states after output, so a host's last output can follow its
terminal ``state`` event; the report must still see every byte before the host ends."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

from muster.cli.exec_cmd import _follow
from muster.cli.human import HumanReport, OutputMode, Terminal


def sse(event_id: int, event: str, data: dict[str, Any]) -> list[str]:
    return [f"id: {event_id}", f"event: {event}", f"data: {json.dumps(data)}", ""]


class ScriptedStream:
    """Stands in for ApiClient.stream_lines only: the lines a server sent."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def stream_lines(self, path: str) -> Iterator[str]:
        yield from self.lines


def output(i: int, host: str, text: str) -> list[str]:
    return sse(i, "output", {"host": host, "stream": "stdout", "data": text})


def state(i: int, host: str, value: str, code: int | None = 0) -> list[str]:
    return sse(i, "state", {"host": host, "state": value, "exit_code": code})


def test_output_after_the_terminal_state_still_belongs_to_the_host() -> None:
    lines = [
        *output(1, "a", "first\n"),
        *state(1, "a", "running", None),
        *state(1, "b", "running", None),
        *state(1, "a", "succeeded"),  # read before a's last chunk (id 2) was
        *output(2, "a", "last\n"),
        *output(3, "b", "only\n"),
        *sse(3, "event", {"host": "b", "data": {"k": "v"}}),
        *state(3, "b", "failed", 1),  # a later read: a is surely complete
        ": keep-alive",
        "",
        *sse(3, "end", {"status": "failed"}),
    ]
    out = io.StringIO()
    report = HumanReport(Terminal(out, status=False), 2, mode=OutputMode.FULL)
    events = _follow(ScriptedStream(lines), "x", report)  # type: ignore[arg-type]
    report.close()
    assert out.getvalue() == "a | SUCCEEDED | rc=0\nfirst\nlast\nb | FAILED | rc=1\nonly\n"
    assert events == {"b": ([{"k": "v"}], 1)}
    assert report.ends["b"].events == [{"k": "v"}]


def test_every_held_host_ends_at_the_end_of_the_stream() -> None:
    lines = [*output(1, "a", "x"), *state(1, "a", "succeeded"), *output(2, "a", "y\n")]
    out = io.StringIO()
    report = HumanReport(Terminal(out, status=False), 1, stream=True)
    _follow(ScriptedStream(lines), "x", report)  # type: ignore[arg-type]
    assert out.getvalue() == "a | xy\na | SUCCEEDED | rc=0\n"
