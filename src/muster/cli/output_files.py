"""``--output-dir DIR``: every host's whole (masked) output in ``DIR/HOST.stdout`` and
``DIR/HOST.stderr``, as Ansible's ``--tree`` and pssh's ``-o`` keep it.

The terminal shows a capped head per host; these files are where the rest
is. They hold exactly what the host printed after masking (no terminal
sanitising, no newline translation, no cap), written as it arrives, so memory stays flat. Host names
are validated by the inventory already; a name is still checked here before
it becomes a path (no separator, no ``..``, nothing that resolves outside
``DIR``), because a file name is the one place a host name could escape.
At most :data:`OPEN_FILES` files are open at once (least recently written
are closed and later reopened for appending), so a run with thousands of
hosts in flight does not exhaust file descriptors.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import TextIO

from muster.errors import ValidationError

__all__ = ["OPEN_FILES", "OutputDir"]

OPEN_FILES = 128
_STREAMS = ("stdout", "stderr")


class OutputDir:
    """Writes host output under one directory; ``close()`` when the run ends."""

    def __init__(self, directory: Path) -> None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValidationError(
                f"cannot create {directory}: {exc}", field="--output-dir"
            ) from exc
        if not directory.is_dir():
            raise ValidationError(f"{directory} is not a directory", field="--output-dir")
        self.directory = directory
        self._root = directory.resolve()
        self._open: OrderedDict[tuple[str, str], TextIO] = OrderedDict()
        #: Files created (truncated) by this run: later opens append.
        self._created: set[tuple[str, str]] = set()

    def path(self, host: str, stream: str) -> Path:
        """Where ``host``'s ``stream`` goes; raises on a name that is not a plain file name."""
        if stream not in _STREAMS:
            raise ValueError(stream)
        bad = (
            not host
            or host in (".", "..")
            or any(c in host for c in "/\\\0")
            or len(host.encode("utf-8", "replace")) > 240
        )
        path = self._root / f"{host}.{stream}"
        if bad or path.resolve().parent != self._root:
            raise ValidationError(f"host name {host!r} cannot be a file name", field="host")
        return path

    def write(self, host: str, stream: str, text: str) -> None:
        self._file(host, stream).write(text)

    def finish(self, host: str) -> None:
        """The host ended: both its files exist (empty when it printed nothing), closed."""
        for stream in _STREAMS:
            key = (host, stream)
            if key not in self._created:
                self._file(host, stream)
            handle = self._open.pop(key, None)
            if handle is not None:
                handle.close()

    def close(self) -> None:
        while self._open:
            _, handle = self._open.popitem(last=False)
            handle.close()

    def _file(self, host: str, stream: str) -> TextIO:
        key = (host, stream)
        handle = self._open.get(key)
        if handle is not None:
            self._open.move_to_end(key)
            return handle
        path = self.path(host, stream)
        if key in self._created:
            opened = path.open("a", encoding="utf-8", errors="replace", newline="")
        else:
            opened = path.open("w", encoding="utf-8", errors="replace", newline="")
        self._created.add(key)
        self._open[key] = opened
        while len(self._open) > OPEN_FILES:
            _, oldest = self._open.popitem(last=False)
            oldest.close()
        return opened
