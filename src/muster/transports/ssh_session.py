"""The client side of one plan's SSH channel: output straight to the sink."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
from typing import Any

import asyncssh

from muster.transports.base import OutputSink, Stream

__all__ = ["PlanSession", "stop_channel"]

_STDERR = asyncssh.EXTENDED_DATA_STDERR


class PlanSession(asyncssh.SSHClientSession[bytes]):
    """Hands each chunk straight to the sink; resolves ``done`` when closed."""

    def __init__(self, sink: OutputSink, done: asyncio.Future[BaseException | None]) -> None:
        self._sink = sink
        self._done = done
        self._out = codecs.getincrementaldecoder("utf-8")("replace")
        self._err = codecs.getincrementaldecoder("utf-8")("replace")
        self.exit_status: int | None = None
        self.exit_signal: str | None = None

    def data_received(self, data: bytes, datatype: int | None) -> None:
        if datatype == _STDERR:
            text = self._err.decode(data)
            if text:
                self._sink(Stream.STDERR, text)
        else:
            text = self._out.decode(data)
            if text:
                self._sink(Stream.STDOUT, text)

    def exit_status_received(self, status: int) -> None:
        self.exit_status = status

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self.exit_signal = signal

    def connection_lost(self, exc: Exception | None) -> None:
        for decoder, stream in ((self._out, Stream.STDOUT), (self._err, Stream.STDERR)):
            tail = decoder.decode(b"", True)
            if tail:
                self._sink(stream, tail)
        # asyncssh ends a session once, and the waiter only ever awaits
        # ``done`` through a shield, so it is still pending here.
        self._done.set_result(exc)


def stop_channel(chan: Any) -> None:
    """Stop the remote side, then close the channel.

    The driver stops on stdin EOF (its watchdog); a bare fast-path command
    only on the TERM signal, which OpenSSH honours for non-root logins only.
    """
    with contextlib.suppress(Exception):
        chan.send_signal("TERM")
    with contextlib.suppress(Exception):
        chan.write_eof()
    with contextlib.suppress(Exception):
        chan.close()
