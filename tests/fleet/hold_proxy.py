"""A TCP proxy that holds new connections until told to go on: a handshake in progress, on demand.

Unlike :class:`~tests.fleet.delay_proxy.DelayProxy` it runs on the test's own
event loop, so a test can synchronise on what it saw (``accepted``, a held
client hanging up) and decide exactly when the handshake may proceed
(:meth:`release`) or dies (:meth:`cut`), without timing guesses.

While a connection is held, what the client sends is kept and delivered
upstream, in order, once it is released.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["HoldProxy"]


class HoldProxy:
    def __init__(self, target: tuple[str, int], listen_host: str = "127.0.0.1") -> None:
        self.target = target
        self.listen_host = listen_host
        self.port = 0
        #: Set once a client has connected (and is now held).
        self.accepted = asyncio.Event()
        #: Set once a held client closed its end before being released.
        self.client_gone = asyncio.Event()
        #: Connections accepted so far.
        self.connections = 0
        #: Resolved with True (go on) or False (cut off) for the connections held now.
        self._gate: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> HoldProxy:
        self._server = await asyncio.start_server(self._handle, self.listen_host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def release(self) -> None:
        """Let held and future connections through to the target."""
        if not self._gate.done():
            self._gate.set_result(True)

    def cut(self) -> None:
        """Close the connections held now without a word, as a host dying mid-handshake
        would; later ones are held again."""
        self._gate.set_result(False)
        self._gate = asyncio.get_running_loop().create_future()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        self.accepted.set()
        try:
            early = await self._hold(reader)
            if early is None:
                return
            up_r, up_w = await asyncio.open_connection(*self.target)
            try:
                up_w.write(early)
                await asyncio.gather(_pipe(reader, up_w), _pipe(up_r, writer))
            finally:
                up_w.close()
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _hold(self, reader: asyncio.StreamReader) -> bytes | None:
        """What the client sent while held; None when it hung up or was cut off first."""
        got = bytearray()
        verdict = self._gate
        while True:
            read = asyncio.ensure_future(reader.read(65536))
            await asyncio.wait({read, verdict}, return_when=asyncio.FIRST_COMPLETED)
            if read.done():
                data = read.result()
                if not data:
                    self.client_gone.set()
                    return None
                got += data
                continue
            read.cancel()
            return bytes(got) if verdict.result() else None


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
        if dst.can_write_eof():
            dst.write_eof()
