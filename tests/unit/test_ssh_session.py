"""How one SSH channel's output reaches the sink: decoded per stream, never split mid-character."""

from __future__ import annotations

import asyncio

import asyncssh

from muster.transports.base import Stream
from muster.transports.ssh_session import PlanSession


class Sink:
    def __init__(self) -> None:
        self.chunks: list[tuple[Stream, str]] = []

    def __call__(self, stream: Stream, text: str) -> None:
        self.chunks.append((stream, text))


async def test_a_character_split_across_packets_reaches_the_sink_whole_once() -> None:
    # SSH packets end wherever the sender's writes ended: "€" is 3 bytes.
    sink = Sink()
    done: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
    session = PlanSession(sink, done)
    euro = "€".encode()
    session.data_received(euro[:1], None)
    session.data_received(euro[:2], asyncssh.EXTENDED_DATA_STDERR)
    assert sink.chunks == []  # nothing decodable yet on either stream, and no empty chunk
    session.data_received(euro[1:] + b"!", None)
    session.data_received(euro[2:], asyncssh.EXTENDED_DATA_STDERR)
    assert sink.chunks == [(Stream.STDOUT, "€!"), (Stream.STDERR, "€")]


async def test_the_end_of_the_channel_flushes_a_cut_character_and_resolves_done() -> None:
    sink = Sink()
    done: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
    session = PlanSession(sink, done)
    session.data_received(b"ok\xe2\x82", asyncssh.EXTENDED_DATA_STDERR)
    lost = asyncssh.ConnectionLost("gone")
    session.connection_lost(lost)
    assert sink.chunks == [(Stream.STDERR, "ok"), (Stream.STDERR, "\ufffd")]
    assert done.result() is lost
