"""Output capture for one stream of one host run: mask, bound, extract events.

Contract of :class:`OutputCapture`:

- **Masking.** Every occurrence of every secret, and of its base64 and hex
  forms (:func:`muster.domain.secret.masked_forms`), becomes ``***``, even
  when it arrives split across chunks: the capture holds back the shortest
  tail that could still be the start of one (never more than the longest
  form minus one character) until the next chunk or ``close()``.
  The result equals masking the whole stream at once, matching leftmost
  first and, at one position, the longest secret first.
- **Bounded storage.** Only the first ``cap_bytes`` bytes (UTF-8) of masked
  text are kept; the rest is counted, and ``close()`` appends a marker saying
  how much was not stored. Memory is flat whatever the output size.
- **Events.** Lines starting with ``@@`` whose remainder parses as a JSON
  object are collected as structured events (from masked text, so a secret
  never reaches an event). A line longer than ``max_event_line`` is not an
  event, and is never buffered past that size.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from muster.domain.secret import masked_forms

__all__ = ["MASK", "EventScanner", "OutputCapture", "mask_all", "parse_event", "truncation_marker"]

MASK = "***"

_START, _SKIP, _COLLECT, _OVERFLOW = range(4)


def truncation_marker(dropped_bytes: int) -> str:
    return f"\n[muster: output truncated, {dropped_bytes} more bytes not stored]\n"


def _pattern(forms: Sequence[str]) -> re.Pattern[str] | None:
    """One alternation of ``forms`` (from :func:`masked_forms`: longest first)."""
    if not forms:
        return None
    return re.compile("|".join(re.escape(s) for s in forms))


def mask_all(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret masked (the whole-stream reference)."""
    pattern = _pattern(masked_forms(secrets))
    return text if pattern is None else pattern.sub(MASK, text)


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


class OutputCapture:
    """Capture of one output stream; see the module docstring for the contract."""

    __slots__ = (
        "_by_first",
        "_closed",
        "_dropped",
        "_event_bytes",
        "_events_dropped",
        "_max_event_bytes",
        "_max_events",
        "_max_secret",
        "_parts",
        "_pattern",
        "_pending",
        "_scanner",
        "_secrets",
        "_stored",
        "cap_bytes",
        "events",
        "total_bytes",
    )

    def __init__(
        self,
        cap_bytes: int,
        secrets: Sequence[str] = (),
        *,
        extract_events: bool = True,
        max_event_line: int = 64 * 1024,
        max_events: int = 10_000,
        max_event_bytes: int = 1024 * 1024,
    ) -> None:
        self.cap_bytes = max(0, cap_bytes)
        # The secrets and their base64/hex forms, longest first.
        self._secrets = tuple(masked_forms(secrets))
        self._pattern = _pattern(self._secrets)
        self._max_secret = len(self._secrets[0]) if self._secrets else 0
        #: Forms by their first character: only there can a held-back tail start.
        self._by_first: dict[str, tuple[str, ...]] = {}
        for form in self._secrets:
            self._by_first[form[0]] = (*self._by_first.get(form[0], ()), form)
        self._pending = ""
        self._parts: list[str] = []
        self._stored = 0
        self._dropped = 0
        #: Bytes of masked text seen, stored or not.
        self.total_bytes = 0
        self._closed = False
        self._scanner = EventScanner(max_event_line) if extract_events else None
        self._max_events = max_events
        #: Events are kept whole, in memory, for the run's result: bounded in
        #: bytes as well as in number, or 10,000 events of a few KB per host
        #: would grow a fleet run by gigabytes.
        self._max_event_bytes = max_event_bytes
        self._event_bytes = 0
        self._events_dropped = 0
        self.events: list[dict[str, Any]] = []

    # -- public ------------------------------------------------------------

    def feed(self, text: str) -> str:
        """Take a chunk; return the masked text that is safe to forward now."""
        if self._closed:
            raise RuntimeError("output capture is closed")
        out = text if self._pattern is None else self._mask_chunk(text)
        if out:
            self._absorb(out)
        return out

    def close(self) -> str:
        """Flush the held-back tail; return it (masked). Idempotent."""
        if self._closed:
            return ""
        out = ""
        if self._pending:
            assert self._pattern is not None
            out = self._pattern.sub(MASK, self._pending)
            self._pending = ""
            self._absorb(out)
        if self._scanner is not None:
            self._keep_events(self._scanner.close())
        self._closed = True
        return out

    @property
    def events_dropped(self) -> int:
        """Events seen but not kept (past ``max_events`` or ``max_event_bytes``)."""
        return self._events_dropped

    @property
    def truncated(self) -> bool:
        return self._dropped > 0

    @property
    def dropped_bytes(self) -> int:
        return self._dropped

    @property
    def text(self) -> str:
        """Stored masked text; after ``close()`` it ends with the truncation marker."""
        body = "".join(self._parts)
        if self._closed and self._dropped:
            return body + truncation_marker(self._dropped)
        return body

    # -- masking -----------------------------------------------------------

    def _mask_chunk(self, text: str) -> str:
        assert self._pattern is not None
        buf = self._pending + text
        n = len(buf)
        # Positions whose suffix is a proper prefix of some secret: more data
        # could complete a secret there, so nothing from the first one on is
        # final yet.
        holds = []
        for p in range(max(0, n - self._max_secret + 1), n):
            forms = self._by_first.get(buf[p])
            if forms is not None and any(len(s) > n - p and s.startswith(buf[p:]) for s in forms):
                holds.append(p)
        out: list[str] = []
        pos = 0
        while True:
            hold = next((p for p in holds if p >= pos), n)
            m = self._pattern.search(buf, pos)
            if m is not None and m.start() < hold:
                # Final: a longer secret at m.start() would need buf[m.start():]
                # to be a proper prefix of it, which would make it a hold point.
                out.append(buf[pos : m.start()])
                out.append(MASK)
                pos = m.end()
                continue
            out.append(buf[pos:hold])
            self._pending = buf[hold:]
            return "".join(out)

    # -- storage -----------------------------------------------------------

    def _absorb(self, out: str) -> None:
        size = _utf8_len(out)
        self.total_bytes += size
        room = self.cap_bytes - self._stored
        if size <= room:
            self._parts.append(out)
            self._stored += size
        elif room > 0:
            head = out.encode("utf-8")[:room].decode("utf-8", "ignore")
            kept = _utf8_len(head)
            self._parts.append(head)
            self._stored += kept
            self._dropped += size - kept
        else:
            self._dropped += size
        if self._scanner is not None:
            found = self._scanner.feed(out)
            if found:
                self._keep_events(found)

    def _keep_events(self, found: Sequence[dict[str, Any]]) -> None:
        """Keep events in order until either budget is spent; count the rest."""
        for i, event in enumerate(found):
            size = _event_size(event) if not self._events_dropped else 0
            if (
                self._events_dropped
                or len(self.events) >= self._max_events
                or self._event_bytes + size > self._max_event_bytes
            ):
                self._events_dropped += len(found) - i
                return
            self.events.append(event)
            self._event_bytes += size


# -- ``@@`` events -------------------------------------------------------------

_NO_EVENTS: Final[tuple[dict[str, Any], ...]] = ()


def _event_size(event: Mapping[str, Any]) -> int:
    """About what the event holds in memory: the length of its JSON text."""
    return len(json.dumps(event, separators=(",", ":"), default=str))


def parse_event(line: str) -> dict[str, Any] | None:
    """The event one whole line holds (``@@`` then a JSON object), or None."""
    if not line.startswith("@@"):
        return None
    try:
        value = json.loads(line[2:])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class EventScanner:
    """The one ``@@`` event parser: finds event lines in a stream fed in any chunks.

    Only a line being collected as a possible event is buffered, and never
    past ``max_line`` characters: a longer line is not an event, and the rest
    of it is skipped rather than read as the start of a new line. A chunk
    without events costs O(1) Python steps (``str.find`` does the scanning).
    """

    __slots__ = ("_buf", "_head", "_len", "_state", "max_line")

    def __init__(self, max_line: int = 64 * 1024) -> None:
        self.max_line = max_line
        self._state = _START
        #: What a line starting now has shown of its first two characters.
        self._head = ""
        self._buf: list[str] = []
        self._len = 0

    def feed(self, text: str) -> Sequence[dict[str, Any]]:
        """The events whose lines ``text`` completes, in order."""
        found: list[dict[str, Any]] | None = None
        i, n = 0, len(text)
        while i < n:
            state = self._state
            if state == _SKIP:
                j = text.find("\n@@", i)
                if j >= 0:
                    self._state, self._head = _START, ""
                    i = j + 1
                    continue
                k = text.rfind("\n", i)
                if k >= 0:
                    tail = text[k + 1 :]
                    if len(tail) < 2 and "@@".startswith(tail):
                        self._state, self._head = _START, tail
                break
            if state == _START:
                take = text[i : i + 2 - len(self._head)]
                nl = take.find("\n")
                if nl >= 0:
                    self._head = ""
                    i += nl + 1
                    continue
                self._head += take
                i += len(take)
                if len(self._head) == 2:
                    if self._head == "@@":
                        self._state = _COLLECT
                        self._buf, self._len = ["@@"], 2
                    else:
                        self._state = _SKIP
                continue
            j = text.find("\n", i)
            end = n if j < 0 else j
            if state == _COLLECT:
                piece = text[i:end]
                self._len += len(piece)
                if self._len > self.max_line:
                    self._state, self._buf = _OVERFLOW, []
                else:
                    self._buf.append(piece)
            if j < 0:
                break
            if self._state == _COLLECT:
                event = self._finish_line()
                if event is not None:
                    if found is None:
                        found = []
                    found.append(event)
            self._state, self._head = _START, ""
            i = j + 1
        return _NO_EVENTS if found is None else found

    def close(self) -> Sequence[dict[str, Any]]:
        """The event on an unterminated last line, if any; the scanner starts over."""
        event = self._finish_line() if self._state == _COLLECT else None
        self._state, self._head = _START, ""
        return _NO_EVENTS if event is None else (event,)

    def _finish_line(self) -> dict[str, Any] | None:
        line = "".join(self._buf)
        self._buf, self._len = [], 0
        self._state = _START
        return parse_event(line)
