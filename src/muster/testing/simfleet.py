"""A simulated fleet: thousands of SSH "hosts" served by asyncssh in one process.

Layout: one asyncssh listener per loopback address (``127.77.0.1``,
``127.77.0.2``, ...) on one common port. Linux routes all of 127.0.0.0/8 to
``lo``, so binding a specific 127.x.y.z address needs no setup, stays on
loopback, and gives every host its own address, so known_hosts lines,
connection pools and inventories look like a real fleet's. A listener is one
socket, so 1,000+ hosts cost 1,000+ file descriptors (the limit is raised to
fit when allowed), not 1,000 ports to find free.

Every host shares one generated host key and accepts one generated client
key (any user name). Exec requests run for real: ``/bin/sh -c COMMAND`` in a
local subprocess (own session, so a signal or a closed channel reaches its
whole process group), stdin forwarded (the ssh transport's ``sh -s`` driver
works), ``MUSTER_SIM_HOST=<name>`` in its environment. Interactive shells and
subsystems are refused.

Use it as an async context manager in tests, with :meth:`start_in_thread`
from sync code, or as a separate process (so that its CPU is not counted as
the controller's in benchmarks)::

    python -m muster.testing.simfleet --hosts 1000 --port 2222 --state-dir /tmp/fleet

which writes ``ready.json`` (port, addresses, key and known_hosts paths) into
the state directory once every listener is up, and runs until terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import resource
import signal
import socket
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncssh

from muster.domain.hosts import Host

__all__ = ["SimFleet"]

_STDERR = asyncssh.EXTENDED_DATA_STDERR
_SIGNALS = {"TERM": signal.SIGTERM, "KILL": signal.SIGKILL, "INT": signal.SIGINT, "HUP": 1}


class _SimSession(asyncssh.SSHServerSession):  # type: ignore[type-arg]
    """One exec request, run as a real local process."""

    def __init__(self, host_name: str) -> None:
        self._host = host_name
        self._chan: Any = None
        self._command: str | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._stdin: list[bytes] = []
        self._stdin_eof = False
        self._writable = asyncio.Event()
        self._writable.set()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def connection_made(self, chan: Any) -> None:
        self._chan = chan

    def shell_requested(self) -> bool:
        return False

    def subsystem_requested(self, subsystem: str) -> bool:
        return False

    def exec_requested(self, command: str) -> bool:
        self._command = command
        return True

    def session_started(self) -> None:
        if self._command is None:
            self._chan.exit(1)
            return
        self._task = asyncio.ensure_future(self._run(self._command))

    def data_received(self, data: bytes, datatype: int | None) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            self._stdin.append(data)
        elif not proc.stdin.is_closing():
            proc.stdin.write(data)

    def eof_received(self) -> bool:
        self._stdin_eof = True
        proc = self._proc
        if proc is not None and proc.stdin is not None:
            proc.stdin.close()
        return True  # half-close: output and the exit status still have to flow back

    def signal_received(self, signal: str) -> None:
        self._kill(_SIGNALS.get(signal, 15))

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._writable.set()
        self._kill(signal.SIGKILL)

    def _kill(self, signum: int) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signum)

    async def _run(self, command: str) -> None:
        env = dict(os.environ)
        env.update(self._chan.get_environment() or {})
        env["MUSTER_SIM_HOST"] = self._host
        try:
            self._proc = proc = await asyncio.create_subprocess_exec(
                "/bin/sh",
                "-c",
                command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            self._chan.write_stderr(f"sim: cannot start /bin/sh: {exc}\n".encode())
            self._chan.exit(127)
            return
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        if self._closed:
            self._kill(signal.SIGKILL)
        for data in self._stdin:
            proc.stdin.write(data)
        self._stdin.clear()
        if self._stdin_eof:
            proc.stdin.close()
        await asyncio.gather(self._pump(proc.stdout, None), self._pump(proc.stderr, _STDERR))
        status = await proc.wait()
        if self._closed:
            return
        with contextlib.suppress(asyncssh.Error, OSError):
            if status < 0:
                name = signal.Signals(-status).name.removeprefix("SIG")
                self._chan.exit_with_signal(name)
            else:
                self._chan.exit(status)

    async def _pump(self, reader: asyncio.StreamReader, datatype: int | None) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                return
            if self._closed:
                continue
            await self._writable.wait()
            with contextlib.suppress(asyncssh.Error, OSError):
                self._chan.write(data, datatype)


class _SimServer(asyncssh.SSHServer):
    def __init__(self, host_name: str) -> None:
        self._host = host_name

    def session_requested(self) -> asyncssh.SSHServerSession:  # type: ignore[type-arg]
        return _SimSession(self._host)


class SimFleet:
    """``n_hosts`` simulated SSH hosts on ``127.77.0.1``... (see the module docstring)."""

    def __init__(
        self,
        n_hosts: int,
        *,
        port: int = 0,
        base_address: str = "127.77.0.1",
        addresses: Sequence[str] | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        groups: Sequence[str] = (),
    ) -> None:
        self.addresses = list(addresses) if addresses else _addresses(base_address, n_hosts)
        self.port = port
        self.groups = tuple(groups)
        self._own_dir = state_dir is None
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="muster-simfleet-"))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.client_key_path = self.state_dir / "client_ed25519"
        self.host_key_path = self.state_dir / "host_ed25519"
        self.known_hosts_path = self.state_dir / "known_hosts"
        self._servers: list[Any] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    # -- hosts ---------------------------------------------------------------

    def host_name(self, index: int) -> str:
        return f"sim{index + 1:04d}"

    def hosts(self, *, user: str = "root") -> list[Host]:
        """One :class:`Host` per simulated host; groups are dealt round-robin."""
        out = []
        for i, addr in enumerate(self.addresses):
            groups = (self.groups[i % len(self.groups)],) if self.groups else ()
            out.append(
                Host(
                    self.host_name(i),
                    address=addr,
                    port=self.port,
                    user=user,
                    groups=groups,
                    labels={"fleet": "sim"},
                )
            )
        return out

    # -- life cycle ----------------------------------------------------------

    async def start(self) -> SimFleet:
        host_key = self._keys()
        _raise_nofile(len(self.addresses) * 2 + 256)
        if not self.port:
            self.port = _free_port(self.addresses[0])
        options = asyncssh.SSHServerConnectionOptions(
            server_host_keys=[host_key],
            authorized_client_keys=asyncssh.import_authorized_keys(
                self.client_key_path.with_suffix(".pub").read_text()
            ),
            encoding=None,
            login_timeout=30,
            keepalive_interval=0,
        )
        try:
            for i, addr in enumerate(self.addresses):
                name = self.host_name(i)
                server = await asyncssh.listen(
                    addr,
                    self.port,
                    server_factory=lambda n=name: _SimServer(n),
                    options=options,
                    backlog=1024,
                    reuse_address=True,
                )
                self._servers.append(server)
        except BaseException:
            await self.stop()
            raise
        self.known_hosts_path.write_text(self.known_hosts_text())
        return self

    async def stop(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        for server in servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def __aenter__(self) -> SimFleet:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def start_in_thread(self, timeout: float = 60.0) -> SimFleet:
        """Serve from a background thread with its own event loop (for sync callers)."""
        ready = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            self._stop = asyncio.Event()
            try:
                await self.start()
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            await self._stop.wait()
            await self.stop()

        def main() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(serve())
            self._loop.close()

        self._thread = threading.Thread(target=main, name="simfleet", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("simulated fleet did not start in time")
        if failure:
            raise failure[0]
        return self

    def stop_thread(self, timeout: float = 30.0) -> None:
        if self._thread is None or self._loop is None or self._stop is None:
            return
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        self._thread = None

    # -- keys ----------------------------------------------------------------

    def _keys(self) -> asyncssh.SSHKey:
        if not self.host_key_path.exists():
            asyncssh.generate_private_key("ssh-ed25519").write_private_key(self.host_key_path)
        if not self.client_key_path.exists():
            client = asyncssh.generate_private_key("ssh-ed25519", comment="muster-sim-client")
            client.write_private_key(self.client_key_path)
            client.write_public_key(self.client_key_path.with_suffix(".pub"))
        os.chmod(self.client_key_path, 0o600)
        return asyncssh.read_private_key(self.host_key_path)

    @property
    def host_public_key(self) -> str:
        key = asyncssh.read_private_key(self.host_key_path)
        return key.export_public_key().decode().strip()

    def known_hosts_text(self) -> str:
        public = self.host_public_key
        return "".join(f"[{addr}]:{self.port} {public}\n" for addr in self.addresses)

    def ready_info(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "addresses": self.addresses,
            "names": [self.host_name(i) for i in range(len(self.addresses))],
            "client_key": str(self.client_key_path),
            "known_hosts": str(self.known_hosts_path),
            "pid": os.getpid(),
        }


def _addresses(base: str, count: int) -> list[str]:
    """``count`` consecutive addresses from ``base``, skipping .0 and .255."""
    out: list[str] = []
    current = int(ipaddress.IPv4Address(base))
    while len(out) < count:
        addr = ipaddress.IPv4Address(current)
        if addr not in ipaddress.IPv4Network("127.0.0.0/8"):
            raise ValueError(f"{count} hosts from {base} leave 127.0.0.0/8")
        if current & 0xFF not in (0, 255):
            out.append(str(addr))
        current += 1
    return out


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def _raise_nofile(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def _serve(args: argparse.Namespace) -> None:
    fleet = SimFleet(
        args.hosts,
        port=args.port,
        base_address=args.base_address,
        state_dir=args.state_dir,
        groups=tuple(g for g in args.groups.split(",") if g),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with fleet:
        ready = fleet.state_dir / "ready.json"
        tmp = ready.with_suffix(".tmp")
        tmp.write_text(json.dumps(fleet.ready_info()))
        tmp.replace(ready)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a simulated SSH fleet on loopback.")
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--port", type=int, default=0, help="common port (0: pick one)")
    parser.add_argument("--base-address", default="127.77.0.1")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--groups", default="", help="comma-separated groups, dealt round-robin")
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
