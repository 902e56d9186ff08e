"""An execution's combined log: every host's lines in the order they arrived,
each prefixed by its host (and ``!`` for stderr), filtered by host and text.

Output chunks carry a database-wide increasing id, so reading an execution's
chunks by id is reading them in arrival order. A chunk may end inside a
line; each (host run, stream) keeps its unfinished line until the next chunk
of that stream completes it (or the output ends), so a line is never split
between two prefixes. Chunks are read page by page: memory stays flat for
any output size.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from muster.store.base import OutputChunk, Store

__all__ = ["LogLine", "combined_lines", "format_line", "log_filter"]

#: Chunks read per store call.
PAGE: Final = 1000


@dataclass(frozen=True, slots=True)
class LogLine:
    at: dt.datetime
    host: str
    stream: str
    text: str


def _lines(chunks: Iterable[OutputChunk], hosts: Mapping[str, str]) -> Iterator[LogLine]:
    pending: dict[tuple[str, str], tuple[dt.datetime, str]] = {}
    for chunk in chunks:
        key = (chunk.host_run_id, chunk.stream)
        host = hosts.get(chunk.host_run_id, chunk.host_run_id[:8])
        started, text = pending.pop(key, (chunk.created_at, ""))
        parts = (text + chunk.data).split("\n")
        for part in parts[:-1]:
            yield LogLine(started, host, chunk.stream, part.rstrip("\r"))
            started = chunk.created_at
        if parts[-1]:
            pending[key] = (started, parts[-1])
    for (run_id, stream), (at, text) in sorted(pending.items(), key=lambda kv: kv[1][0]):
        yield LogLine(at, hosts.get(run_id, run_id[:8]), stream, text)


def _chunks(store: Store, execution_id: str) -> Iterator[OutputChunk]:
    after = 0
    while True:
        page = store.read_output(execution_id=execution_id, after_id=after, limit=PAGE)
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1].id


def log_filter(host: str, text: str) -> tuple[str, str]:
    """The filters as used: a host name or glob (``web*``), a text to find (any case)."""
    return host.strip(), text.strip().lower()


def combined_lines(
    store: Store, execution_id: str, *, host: str = "", text: str = ""
) -> Iterator[LogLine]:
    """The execution's lines in arrival order, only the hosts matching ``host`` (a name
    or a glob) and the lines containing ``text`` (case-insensitive), if given."""
    execution = store.get_execution(execution_id)
    names: dict[str, str] = {}
    for run in execution.host_runs:
        names[run.id] = run.host_name if run.attempt == 1 else f"{run.host_name}#{run.attempt}"
    host, text = log_filter(host, text)
    for line in _lines(_chunks(store, execution_id), names):
        if host and not fnmatch.fnmatchcase(line.host.partition("#")[0], host):
            continue
        if text and text not in line.text.lower():
            continue
        yield line


def format_line(line: LogLine, width: int = 0) -> str:
    """``host | text`` (``host ! text`` for stderr), the host padded to ``width``."""
    mark = "!" if line.stream == "stderr" else "|"
    return f"{line.host.ljust(width)} {mark} {line.text}"
