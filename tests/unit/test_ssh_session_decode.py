"""A UTF-8 character split across two SSH packets reaches the sink once, whole."""

from __future__ import annotations

import asyncio

import asyncssh

from muster.transports.base import Stream
from muster.transports.ssh_session import PlanSession


async def test_split_multibyte_character_is_held_until_complete() -> None:
    seen: list[tuple[Stream, str]] = []
    done: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
    session = PlanSession(lambda stream, text: seen.append((stream, text)), done)
    session.data_received(b"\xc3", None)  # first half of "é": nothing to hand on yet
    session.data_received(b"\xa9!", None)
    session.data_received(b"\xe2\x82", asyncssh.EXTENDED_DATA_STDERR)
    session.data_received(b"\xac", asyncssh.EXTENDED_DATA_STDERR)
    assert seen == [(Stream.STDOUT, "é!"), (Stream.STDERR, "€")]
