"""One POSIX sh script captures every command of a verification in one round trip.

Each command runs in its own subshell (``eval`` of its single-quoted text, so a
syntax error in one command fails that command only), with stderr merged into
stdout and stdin from ``/dev/null`` (a command that reads stdin cannot eat the
rest of a script fed through ``sh -s``). Its output is framed by two lines::

    <marker>:begin:<key>
    ...output...
    <marker>:end:<key>:<exit code>

The marker is chosen by the caller per run (random, unguessable). The script never
contains a whole frame line, nor even the marker in one piece (it is printed from
two halves), so a command that prints the script itself (``ps -ef``, ``set -x``)
cannot forge a frame, and frames of another run (another marker) are plain output.
A newline is always printed before the end line and removed when parsing, so output
without a trailing newline keeps its exact text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from muster.domain.verification_model import Captured
from muster.errors import ValidationError

__all__ = ["KEY_PATTERN", "MARKER_PATTERN", "capture_script", "parse_capture"]

#: Names of captured commands: they appear verbatim in frame lines and field paths.
KEY_PATTERN: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,99}\Z")
#: A per-run marker: long enough to be unguessable, plain enough to need no quoting.
MARKER_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{16,128}\Z")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _check_marker(marker: str) -> None:
    if not MARKER_PATTERN.match(marker):
        raise ValidationError(
            "a capture marker is 16 to 128 letters, digits, '-' or '_'", field="marker"
        )


def capture_script(commands: Mapping[str, str], marker: str) -> str:
    """The sh script that runs ``commands`` in order and frames each one's output."""
    _check_marker(marker)
    half = len(marker) // 2
    lines = [f"m1={_quote(marker[:half])}", f"m2={_quote(marker[half:])}"]
    for key, command in commands.items():
        if not KEY_PATTERN.match(key):
            raise ValidationError(f"bad capture key {key!r}", field=f"commands.{key}")
        lines += [
            # The leading newline ends any output (a login banner) left without one.
            f"printf '\\n%s%s:begin:%s\\n' \"$m1\" \"$m2\" '{key}'",
            f"( eval {_quote(command)} ) </dev/null 2>&1",
            f'printf \'\\n%s%s:end:%s:%s\\n\' "$m1" "$m2" \'{key}\' "$?"',
        ]
    return "\n".join(lines) + "\n"


def _frame(marker: str) -> re.Pattern[str]:
    # \r?: a pty turns every newline into CRLF; frame lines must still be found.
    return re.compile(
        rf"^{re.escape(marker)}:(begin|end):([A-Za-z_][A-Za-z0-9_.-]*)(?::(-?[0-9]+))?\r?$",
        re.MULTILINE,
    )


def _body(text: str) -> str:
    """Drop the one newline the script printed before the end frame, nothing more."""
    return text.removesuffix("\n")


def parse_capture(stdout: str, marker: str) -> dict[str, Captured]:
    """Each framed command's output and exit code, by key.

    Only frames with exactly ``marker`` count. A section whose end never came (the
    output was cut, the connection dropped) has ``exit_code`` None. Text outside
    sections (a login banner) is ignored; a key seen twice keeps its first section.
    """
    _check_marker(marker)
    found: dict[str, Captured] = {}
    open_key: str | None = None
    open_at = 0

    def close(key: str, end: int, code: int | None) -> None:
        if key not in found:
            found[key] = Captured(text=_body(stdout[open_at:end]), exit_code=code)

    for frame in _frame(marker).finditer(stdout):
        kind, key, code = frame.group(1), frame.group(2), frame.group(3)
        if kind == "end" and key == open_key and code is not None:
            close(key, frame.start(), int(code))
            open_key = None
        elif kind == "begin" and code is None:
            if open_key is not None:
                # A new section began before the last one ended: that one was cut.
                close(open_key, frame.start(), None)
            open_key = key
            open_at = frame.end() + 1
        # Anything else (an end for another key, a begin with a code) is not ours.
    if open_key is not None:
        close(open_key, len(stdout), None)
    return found
