"""The CLI's human output of an execution, whatever feeds it.

``muster run`` (the in-process dispatcher, through
:class:`muster.cli.present.LiveReport`) and ``muster exec start --follow``
(a server's event stream) both hand a :class:`HumanReport` the same two
things: masked output chunks as they arrive, and each host's end. It prints:

- ``grouped`` (the default above :data:`FEW_HOSTS` hosts): at the end, hosts
  with identical output, exit code and state once, with their host list in
  name order, largest group first (pdsh's ``dshbak -c``; the rule is the console's,
  :func:`muster.domain.result_groups.group_results`, fed a hash of every
  byte each host printed);
- ``full``: every host's output as it ends;
- ``none``: nothing but the summary the caller prints;
- ``--stream``: lines as they arrive, ``host | line`` (``host ! line`` for
  stderr), each line whole.

Host output never goes through Rich: it is made terminal-safe by
:mod:`muster.cli.host_text` and written to ``sys.stdout`` as plain text,
capped per host and stream (:data:`~muster.cli.host_text.TERMINAL_CAP_LINES`
lines or :data:`~muster.cli.host_text.TERMINAL_CAP_BYTES` characters), with
a pointer to the rest (``--output-dir``). Memory per host is that cap, and
per group of identical results once; the cost per byte of output is a hash
(grouped), a file write (``--output-dir``) or a line split (``--stream``).
"""

from __future__ import annotations

import enum
import hashlib
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from muster.cli.host_text import (
    TERMINAL_CAP_BYTES,
    LineSplitter,
    human_bytes,
    render_block,
    terminal_safe,
)
from muster.cli.output_files import OutputDir
from muster.domain.result_groups import RunDigest, group_key, group_results
from muster.domain.states import HostRunState

__all__ = ["FEW_HOSTS", "HostEnd", "HumanReport", "OutputMode", "Terminal"]

#: Up to this many hosts, ``full`` is the default; above it, ``grouped``.
FEW_HOSTS = 5
#: Host names listed under a group's header; the rest are counted.
LISTED_HOSTS = 100
#: Events kept per host for the summary (all of them are in ``--json``).
SUMMARY_EVENTS = 3

_COLOURS = {
    HostRunState.SUCCEEDED: "32",
    HostRunState.FAILED: "31",
    HostRunState.TIMED_OUT: "35",
    HostRunState.LOST: "31",
    HostRunState.CANCELLED: "33",
    HostRunState.REJECTED: "33",
    HostRunState.SKIPPED: "2",
}


class OutputMode(enum.StrEnum):
    GROUPED = "grouped"
    FULL = "full"
    NONE = "none"


@dataclass(slots=True)
class HostEnd:
    """How one host ended, as the summary and the headers show it."""

    host: str
    state: HostRunState
    exit_code: int | None = None
    duration: float | None = None
    reason: str | None = None
    message: str = ""
    #: The first :data:`SUMMARY_EVENTS` events; ``event_count`` counts all.
    events: list[dict[str, Any]] = field(default_factory=list)
    event_count: int = 0
    #: Events the host printed past the capture's budget (not in ``--json`` either).
    events_dropped: int = 0
    #: First non-empty stderr line (the summary's detail for a failure).
    first_error: str = ""


class Terminal:
    """Plain-text writes to stdout, and a one-line status under them on a terminal.

    The status line (``running: 12/50 done, 1 failed, 7s``) is redrawn in
    place with ``CR`` and erase-line, and erased before every write, so the
    output scrolls above it; off a terminal there is none.
    """

    def __init__(self, stream: TextIO | None = None, *, status: bool | None = None) -> None:
        self._out = stream if stream is not None else sys.stdout
        tty = self._out.isatty()
        self.colour = tty and "NO_COLOR" not in os.environ
        self._status_on = tty if status is None else status
        self._shown = False
        reconfigure = getattr(self._out, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")

    def write(self, text: str) -> None:
        if not text:
            return
        if self._shown:
            self._out.write("\r\x1b[2K")
            self._shown = False
        self._out.write(text)

    def status(self, text: str) -> None:
        if not self._status_on:
            return
        self._out.write("\r\x1b[2K" + text)
        self._out.flush()
        self._shown = True

    def clear_status(self) -> None:
        if self._shown:
            self._out.write("\r\x1b[2K")
            self._shown = False
        self._out.flush()

    def paint(self, text: str, sgr: str) -> str:
        """``text`` in colour ``sgr`` (``"31"``) on a colour terminal; as is otherwise."""
        return f"\x1b[{sgr}m{text}\x1b[0m" if self.colour and sgr else text


class _Stream:
    """What is kept of one host stream: a head for the terminal, a size, a hash."""

    __slots__ = ("hash", "head", "head_len", "size")

    def __init__(self, hashing: bool) -> None:
        self.head: list[str] = []
        self.head_len = 0
        self.size = 0
        self.hash = hashlib.sha256() if hashing else None

    def add(self, text: str) -> None:
        if self.head_len < TERMINAL_CAP_BYTES:
            piece = text[: TERMINAL_CAP_BYTES - self.head_len]
            self.head.append(piece)
            self.head_len += len(piece)
        data = text.encode("utf-8", "replace")
        self.size += len(data)
        if self.hash is not None:
            self.hash.update(data)

    def text(self) -> str:
        return "".join(self.head)


class _Host:
    __slots__ = ("splitters", "streams")

    def __init__(self, hashing: bool) -> None:
        self.streams = {"stdout": _Stream(hashing), "stderr": _Stream(hashing)}
        self.splitters: dict[str, LineSplitter] = {}


@dataclass(slots=True)
class _Shown:
    """One group's output, kept once (from its first host)."""

    host: str
    stdout: str
    stderr: str
    stdout_size: int
    stderr_size: int


class HumanReport:
    """Prints one execution for a person; see the module docstring."""

    def __init__(
        self,
        terminal: Terminal,
        total: int,
        *,
        mode: OutputMode | None = None,
        stream: bool = False,
        output_dir: OutputDir | None = None,
    ) -> None:
        self._term = terminal
        self.total = total
        self.mode = mode or (OutputMode.FULL if total <= FEW_HOSTS else OutputMode.GROUPED)
        self.streaming = stream
        self._files = output_dir
        self._hosts: dict[str, _Host] = {}
        self._digests: list[RunDigest] = []
        self._shown: dict[str, _Shown] = {}
        self.ends: dict[str, HostEnd] = {}
        self._failed = 0
        self._started = time.monotonic()
        self._last_status = 0.0
        self._width = 0

    # -- input ---------------------------------------------------------------

    def output(self, host: str, stream: str, text: str) -> None:
        """A masked chunk of ``host``'s ``stream`` (``"stdout"`` or ``"stderr"``)."""
        if not text:
            return
        entry = self._host(host)
        entry.streams[stream].add(text)
        if self._files is not None:
            self._files.write(host, stream, text)
        if self.streaming:
            splitter = entry.splitters.get(stream)
            if splitter is None:
                splitter = entry.splitters[stream] = self._splitter(host, stream)
            self._term.write(splitter.feed(text))
            self._tick()

    def finished(self, end: HostEnd) -> None:
        """``end.host`` reached a terminal state."""
        entry = self._hosts.pop(end.host, None) or _Host(False)
        out, err = entry.streams["stdout"], entry.streams["stderr"]
        if not end.first_error:
            end.first_error = next((ln for ln in err.text().splitlines() if ln.strip()), "")
        if end.host in self.ends:  # a new attempt (a retry): the last one counts
            self._digests = [d for d in self._digests if d.host_name != end.host]
            if self.ends[end.host].state not in (HostRunState.SUCCEEDED, HostRunState.SKIPPED):
                self._failed -= 1
        self.ends[end.host] = end
        if end.state not in (HostRunState.SUCCEEDED, HostRunState.SKIPPED):
            self._failed += 1
        if self._files is not None:
            self._files.finish(end.host)
        if self.streaming:
            tail = "".join(s.close() for s in entry.splitters.values())
            self._term.write(tail + self._host_line(end) + "\n")
        elif self.mode is OutputMode.FULL:
            shown = _Shown(end.host, out.text(), err.text(), out.size, err.size)
            self._term.write(self._host_line(end) + "\n" + self._blocks(shown))
        elif self.mode is OutputMode.GROUPED:
            digest = RunDigest(
                end.state,
                end.exit_code,
                end.reason,
                end.message,
                out.text()[-200:],
                err.text()[:200],
                end.host,
                _fingerprint(out, err),
            )
            self._digests.append(digest)
            key = group_key(digest)
            if key not in self._shown:
                self._shown[key] = _Shown(end.host, out.text(), err.text(), out.size, err.size)
        self._tick(force=True)

    def close(self) -> None:
        """Everything is in: print the groups (grouped mode), end the status line."""
        self._term.clear_status()
        if self.mode is OutputMode.GROUPED and not self.streaming:
            for group in group_results(self._digests):
                shown = self._shown[group.key]
                self._term.write(self._group_header(group.hosts, group.state, group.label))
                self._term.write(self._blocks(shown, group_of=len(group.hosts)))
        if self._files is not None:
            self._files.close()
            self._term.write(f"output of every host: {self._files.directory}/HOST.stdout|stderr\n")
        self._term.clear_status()

    # -- rendering -----------------------------------------------------------

    def _host(self, host: str) -> _Host:
        entry = self._hosts.get(host)
        if entry is None:
            grouped = self.mode is OutputMode.GROUPED and not self.streaming
            entry = self._hosts[host] = _Host(grouped)
        return entry

    def _splitter(self, host: str, stream: str) -> LineSplitter:
        self._width = max(self._width, min(len(host), 24))
        mark = "|" if stream == "stdout" else "!"
        prefix = f"{terminal_safe(host):<{self._width}} {mark} "
        if stream == "stderr":
            prefix = self._term.paint(prefix, "31")
        where = (
            str(self._files.path(host, stream))
            if self._files is not None
            else "--output-dir DIR keeps it"
        )
        return LineSplitter(prefix, colour=self._term.colour, where=where)

    def _tick(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_status < 0.5:
            return
        self._last_status = now
        done = len(self.ends)
        failed = f", {self._failed} failed" if self._failed else ""
        self._term.status(f"running: {done}/{self.total} done{failed}, {now - self._started:.0f}s")

    def _host_line(self, end: HostEnd) -> str:
        parts = [
            self._term.paint(terminal_safe(end.host), "1"),
            self._term.paint(end.state.value.upper(), _COLOURS.get(end.state, "")),
        ]
        if end.exit_code is not None:
            parts.append(f"rc={end.exit_code}")
        if end.duration is not None:
            parts.append(f"{end.duration:.2f}s")
        if end.state is not HostRunState.SUCCEEDED and end.message:
            parts.append(terminal_safe(end.message.replace("\n", " ")))
        return " | ".join(parts)

    def _group_header(self, hosts: list[str], state: HostRunState, label: str) -> str:
        state_text = self._term.paint(state.value.upper(), _COLOURS.get(state, ""))
        label = terminal_safe(label.replace("\n", " "))
        if len(hosts) == 1:
            return f"=== {self._term.paint(terminal_safe(hosts[0]), '1')}: {state_text}, {label}\n"
        hosts = sorted(hosts, key=_natural)
        listed = ", ".join(terminal_safe(h) for h in hosts[:LISTED_HOSTS])
        if len(hosts) > LISTED_HOSTS:
            listed += f", ... and {len(hosts) - LISTED_HOSTS} more"
        head = self._term.paint(f"{len(hosts)} hosts", "1")
        return f"=== {head}: {state_text}, {label}\n    {listed}\n"

    def _blocks(self, shown: _Shown, *, group_of: int = 1) -> str:
        out: list[str] = []
        for stream, text, size in (
            ("stdout", shown.stdout, shown.stdout_size),
            ("stderr", shown.stderr, shown.stderr_size),
        ):
            if not size:
                continue
            block, lines, used = render_block(text, colour=self._term.colour)
            if stream == "stderr":
                out.append(self._term.paint("--- stderr", "31") + "\n")
            if block:
                out.append(block + "\n")
            shown_bytes = len(text[:used].encode("utf-8", "replace"))
            if shown_bytes < size:
                out.append(self._more(shown.host, stream, lines, shown_bytes, size, group_of))
        return "".join(out)

    def _more(self, host: str, stream: str, lines: int, shown: int, size: int, group: int) -> str:
        where = (
            f"{self._files.path(host, stream)}"
            if self._files is not None
            else "--output-dir DIR keeps every byte"
        )
        same = " (the same on every host of the group)" if group > 1 else ""
        text = (
            f"[muster: {stream} cut at {lines} lines / {human_bytes(shown)} of "
            f"{human_bytes(size)}{same}; the rest: {where}]\n"
        )
        return self._term.paint(text, "2")


def _natural(name: str) -> list[str | int]:
    """Sort key listing a group's hosts as a reader scans them (``web2`` before
    ``web10``), not in the order they happened to finish."""
    return [int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", name))]


def _fingerprint(out: _Stream, err: _Stream) -> str:
    if out.hash is None or err.hash is None:
        return ""
    return out.hash.hexdigest()[:32] + err.hash.hexdigest()[:32]
