"""Host output made safe and readable on an operator's terminal.

Host output is untrusted text: a compromised or careless host can print
escape sequences that clear the screen, move the cursor over earlier lines
(another host's result), set the window title, or hide text. So before any
of it reaches the terminal, :func:`terminal_safe`:

- keeps SGR sequences (``ESC [ digits ; m``: colours, bold) when the caller
  asks for colour (a terminal without ``NO_COLOR``), and removes them
  otherwise (a pipe or file gets plain text). A line that used one ends with
  a reset, so a colour never leaks into the next host's line. SGR cannot
  move the cursor or touch anything outside the line being written; the
  one SGR that hides text (8, conceal) is dropped;
- makes every other control character visible in caret notation (``ESC [2J``
  prints as ``^[[2J``, NUL as ``^@``, DEL as ``^?``), and C1 controls
  (U+0080..U+009F, where U+009B is a one-character CSI on some terminals)
  and bidirectional overrides as ``<U+009B>``: no cursor movement, screen
  clearing, title or hyperlink sequence ever reaches the terminal;
- ends a ``\\r`` progress bar as a terminal would show it: CR LF is a line
  end, and a line redrawn with ``\\r`` keeps only what was drawn last, so a
  bar never overwrites the ``host |`` prefix or another host's line.

Tabs and newlines pass. Invalid UTF-8 was already replaced (U+FFFD) by the
transports' decoders; a lone surrogate is replaced here. The full, unaltered
(masked) output is what ``--output-dir`` and ``--json`` keep.

Everything here is plain ``str`` work (regexes and ``str.replace``, which run
in C): no Rich, no markup, no highlighter, so the cost per byte stays flat.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "TERMINAL_CAP_BYTES",
    "TERMINAL_CAP_LINES",
    "LineSplitter",
    "human_bytes",
    "render_block",
    "render_event",
    "terminal_safe",
]

#: What the terminal shows of one host's stream in ``grouped`` and ``full``
#: output: the first this many lines, or bytes, whichever comes first.
TERMINAL_CAP_LINES = 100
TERMINAL_CAP_BYTES = 16 * 1024
#: Longest line ``--stream`` prints; the rest of a longer line is counted.
STREAM_LINE_CAP = 4 * 1024

_SGR = r"\x1b\[[0-9;:]{0,64}m"
_CONTROLS = r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
#: An SGR sequence, or one control character to make visible.
_UNSAFE = re.compile(f"({_SGR})|{_CONTROLS}")
#: Off a terminal every SGR goes: removed by one substitution in C, before the
#: (rare) controls left take the per-match path. An ESC that removal joins to
#: what follows is still a control, made visible by that second pass.
_SGR_ONLY = re.compile(_SGR)
_CONTROL_ONLY = re.compile(_CONTROLS)
#: Everything up to the last ``\r`` on a line that is followed by more text.
#: (Anchored at line starts, so a long line without ``\r`` is scanned once, not once
#: per position.)
_REDRAWN = re.compile(r"^[^\n]*\r(?=[^\r\n])", re.MULTILINE)
_CRLF = re.compile(r"\r+\n")
#: From the first kept SGR of a line to its end.
_COLOURED_LINE = re.compile(r"\x1b\[[0-9;:]{0,64}m[^\n]*")


def _visible(char: str) -> str:
    code = ord(char)
    if code < 0x20:
        return "^" + chr(code + 0x40)
    if code == 0x7F:
        return "^?"
    if 0xD800 <= code <= 0xDFFF:
        return "\ufffd"
    return f"<U+{code:04X}>"


#: Bytes that never need a second look: printable ASCII, tab and newline.
_PLAIN_BYTES = bytes(range(0x20, 0x7F)) + b"\t\n"


def _plain(text: str) -> bool:
    """True when ``text`` is printable ASCII, tabs and newlines (checked in C, ~25 us per
    64 KiB); other text takes the regex, which is a hundred times slower."""
    return text.isascii() and not text.encode("ascii").translate(None, _PLAIN_BYTES)


def _has_events(block: str) -> bool:
    return "@@" in block and (block.startswith("@@") or "\n@@" in block)


def _longest_line_over(block: str, cap: int) -> bool:
    """Whether a line of ``block`` is longer than ``cap``: one backwards search per
    ``cap`` characters, not one step per line."""
    pos, n = 0, len(block)
    while n - pos > cap:
        nl = block.rfind("\n", pos, pos + cap + 1)
        if nl < 0:
            return True
        pos = nl + 1
    return False


def _sgr_shows_text(params: str) -> bool:
    """False for an SGR that conceals text (parameter 8); colour indexes such as
    ``38;5;8`` are not that parameter."""
    tokens = params.replace(":", ";").split(";")
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token in ("38", "48", "58"):
            i += 3 if i + 1 < len(tokens) and tokens[i + 1] == "5" else 5
            continue
        if token == "8":
            return False
        i += 1
    return True


def terminal_safe(text: str, *, colour: bool = False) -> str:
    """``text`` as it may be written to a terminal (see the module docstring)."""
    if "\r" in text:
        text = _CRLF.sub("\n", text)
        text = _REDRAWN.sub("", text)
        text = text.replace("\r", "")
    if _plain(text) or _UNSAFE.search(text) is None:
        return text
    if not colour:
        text = _SGR_ONLY.sub("", text)
        if _CONTROL_ONLY.search(text) is None:
            return text
        return _CONTROL_ONLY.sub(lambda m: _visible(m.group(0)), text)
    kept = False

    def one(m: re.Match[str]) -> str:
        nonlocal kept
        if m.group(1) is not None:
            if colour and _sgr_shows_text(m.group(1)[2:-1]):
                kept = True
                return m.group(1)
            return ""
        return _visible(m.group(0))

    out = _UNSAFE.sub(one, text)
    if kept:
        out = _COLOURED_LINE.sub(lambda m: m.group(0) + "\x1b[0m", out)
    return out


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        needs_quotes = (
            not value or not value.isprintable() or any(c.isspace() or c in "\"'=" for c in value)
        )
        return json.dumps(value, ensure_ascii=False) if needs_quotes else value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def render_event(event: dict[str, Any], *, limit: int = 400) -> str:
    """A ``@@{json}`` event as ``key=value key2="two words"``, at most ``limit`` characters.

    The result is made terminal-safe (keys and values are host output too).
    """
    text = " ".join(f"{key}={_scalar(value)}" for key, value in event.items())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return terminal_safe(text)


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _event_line(line: str) -> str | None:
    from muster.domain.output import parse_event

    event = parse_event(line)
    return None if event is None else "@@ " + render_event(event)


def render_block(text: str, *, colour: bool = False) -> tuple[str, int, int]:
    """The terminal form of the head of one stream: ``(block, lines, chars)``.

    At most :data:`TERMINAL_CAP_LINES` lines or :data:`TERMINAL_CAP_BYTES`
    characters of ``text`` are used; ``chars`` says how many, so the caller
    can say how much was not shown. Event lines become ``@@ key=value``.
    The block ends without a newline; it is empty when ``text`` is.
    """
    head = text[:TERMINAL_CAP_BYTES]
    cut = -1
    for _ in range(TERMINAL_CAP_LINES):
        cut = head.find("\n", cut + 1)
        if cut < 0:
            break
    if cut >= 0:
        head = head[: cut + 1]
    used = len(head)
    if _has_events(head):
        lines = head.split("\n")
        head = "\n".join(_event_line(ln) or ln if ln.startswith("@@") else ln for ln in lines)
    body = terminal_safe(head, colour=colour).removesuffix("\n")
    return body, body.count("\n") + 1 if head else 0, used


class LineSplitter:
    """One host stream cut into whole lines for ``--stream``, each prefixed.

    ``feed`` returns text made only of whole lines (so two hosts' lines never
    mix within a line), each starting with ``prefix``; a partial last line
    waits for its end, but never more than :data:`STREAM_LINE_CAP`
    characters of it are kept: the rest is counted and the line is printed
    cut, with how much was left out and ``where`` the whole line is. Work per
    chunk is a few C-level scans unless a chunk holds an over-long line or an
    event line.
    """

    __slots__ = ("_colour", "_dropped", "_line_cap", "_partial", "_partial_len", "_where", "prefix")

    def __init__(
        self,
        prefix: str,
        *,
        colour: bool = False,
        line_cap: int = STREAM_LINE_CAP,
        where: str = "",
    ) -> None:
        self.prefix = prefix
        #: Where the whole line is (a file path), named on a cut line.
        self._where = where
        self._colour = colour
        self._line_cap = line_cap
        self._partial: list[str] = []
        self._partial_len = 0
        #: Characters of the current line not kept (past the cap).
        self._dropped = 0

    def feed(self, text: str) -> str:
        end = text.rfind("\n")
        if end < 0:
            self._hold(text)
            return ""
        first_nl = text.find("\n")
        first = self._take_partial(text[: first_nl + 1])
        rest = text[first_nl + 1 : end + 1]
        self._hold(text[end + 1 :])
        return first + self._lines(rest)

    def close(self) -> str:
        """The unterminated last line, if any (with a newline added)."""
        if not self._partial_len and not self._dropped:
            return ""
        return self._take_partial("\n")

    def _hold(self, text: str) -> None:
        if not text:
            return
        room = self._line_cap - self._partial_len
        if room > 0:
            piece = text[:room]
            self._partial.append(piece)
            self._partial_len += len(piece)
        self._dropped += max(0, len(text) - max(room, 0))

    def _take_partial(self, ending: str) -> str:
        """The held line completed by ``ending`` (its text through the newline)."""
        self._hold(ending[:-1])
        line = "".join(self._partial)
        dropped = self._dropped
        self._partial, self._partial_len, self._dropped = [], 0, 0
        return self._one(line, dropped)

    def _one(self, line: str, dropped: int) -> str:
        if line.startswith("@@") and not dropped:
            shown = _event_line(line)
            if shown is not None:
                return f"{self.prefix}{shown}\n"
        body = terminal_safe(line, colour=self._colour)
        if dropped:
            where = f"; the whole line: {self._where}" if self._where else ""
            body += f" [muster: line cut, {dropped} more characters{where}]"
        return f"{self.prefix}{body}\n"

    def _lines(self, block: str) -> str:
        """Whole lines (``block`` ends with a newline, or is empty), prefixed."""
        if not block:
            return ""
        if _longest_line_over(block, self._line_cap) or _has_events(block):
            out = []
            for line in block[:-1].split("\n"):
                cut = max(0, len(line) - self._line_cap)
                out.append(self._one(line[: self._line_cap], cut))
            return "".join(out)
        body = terminal_safe(block, colour=self._colour)
        return self.prefix + body[:-1].replace("\n", "\n" + self.prefix) + "\n"
