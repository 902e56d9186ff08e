"""Small helpers shared by the transport tests (local and SSH)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from muster.domain.hosts import Host
from muster.domain.plans import PlanCommand
from muster.transports.base import Stream
from muster.transports.ssh import SshTransport
from tests.fleet.sshd import SshdServer


class Collect:
    """A sink that keeps what it is given (the transport itself keeps nothing)."""

    def __init__(self, wake_on: str | None = None) -> None:
        self.out: list[str] = []
        self.err: list[str] = []
        self.chunks = 0
        self.seen = asyncio.Event()
        self._wake_on = wake_on

    def __call__(self, stream: Stream, text: str) -> None:
        self.chunks += 1
        (self.out if stream is Stream.STDOUT else self.err).append(text)
        if self._wake_on is not None and self._wake_on in text:
            self.seen.set()

    @property
    def stdout(self) -> str:
        return "".join(self.out)

    @property
    def stderr(self) -> str:
        return "".join(self.err)


def sh(script: str, timeout: float = 20, ignore_errors: bool = False) -> PlanCommand:
    return PlanCommand(("/bin/sh", "-c", script), timeout, ignore_errors)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


async def wait_gone(pid: int, within: float = 10.0) -> bool:
    """True once ``pid`` no longer runs; raises TimeoutError past ``within``."""
    async with asyncio.timeout(within):
        while pid_alive(pid):
            await asyncio.sleep(0.02)
    return True


async def read_pid(path: Path, within: float = 10.0) -> int:
    """Wait for a remote command (same machine) to write its pid to ``path``."""
    async with asyncio.timeout(within):
        while True:
            text = path.read_text() if path.exists() else ""
            if text.strip():
                return int(text)
            await asyncio.sleep(0.02)


def host_of(server: SshdServer) -> Host:
    addr, port = server.listen[0]
    return Host("loopback", address=addr, port=port, user="root")


def transport_for(server: SshdServer, known_hosts: Path, **kwargs: object) -> SshTransport:
    return SshTransport(
        known_hosts=str(known_hosts),
        client_keys=[str(server.client_key)],
        connect_timeout=5,
        **kwargs,  # type: ignore[arg-type]
    )
