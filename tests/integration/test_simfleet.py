"""The simulated fleet is a real SSH server: a stock asyncssh client runs commands on it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest

from muster.testing.simfleet import SimFleet


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[SimFleet]:
    async with SimFleet(
        50, base_address="127.77.1.1", state_dir=tmp_path, groups=("web", "db")
    ) as f:
        yield f


def _connect(fleet: SimFleet, address: str) -> asyncssh.connection._ConnectContextManager:
    return asyncssh.connect(
        address,
        fleet.port,
        username="root",
        client_keys=[str(fleet.client_key_path)],
        known_hosts=str(fleet.known_hosts_path),
        config=None,
    )


async def test_a_command_runs_on_fifty_hosts(fleet: SimFleet) -> None:
    hosts = fleet.hosts()
    assert len(hosts) == 50 and len({h.address for h in hosts}) == 50
    assert {h.groups for h in hosts} == {("web",), ("db",)}

    async def one(address: str) -> tuple[str, int | None]:
        async with _connect(fleet, address) as conn:
            result = await conn.run('echo "hi from $MUSTER_SIM_HOST"')
            return str(result.stdout), result.exit_status

    results = await asyncio.gather(*(one(h.hostname) for h in hosts))
    assert results == [(f"hi from {h.name}\n", 0) for h in hosts]


async def test_stdin_is_forwarded_so_a_driver_on_sh_s_works(fleet: SimFleet) -> None:
    driver = "set -e\nx=$(cat <<'EOF'\nquoted 'text'\nEOF\n)\necho \"$x\"\necho oops >&2\nexit 7\n"
    async with _connect(fleet, fleet.addresses[0]) as conn:
        result = await conn.run("sh -s", input=driver)
    assert result.stdout == "quoted 'text'\n"
    assert result.stderr == "oops\n"
    assert result.exit_status == 7


async def test_death_by_signal_is_reported_as_a_signal(fleet: SimFleet) -> None:
    async with _connect(fleet, fleet.addresses[1]) as conn:
        result = await conn.run("echo before; kill -TERM $$")
    assert result.stdout == "before\n"
    assert result.exit_signal is not None and result.exit_signal[0] == "TERM"


async def test_closing_the_channel_kills_the_remote_process(
    fleet: SimFleet, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pid"
    async with _connect(fleet, fleet.addresses[2]) as conn:
        process = await conn.create_process(f"echo $$ > {pidfile}; echo started; exec sleep 300")
        assert await asyncio.wait_for(process.stdout.readline(), 10) == "started\n"
        pid = int(pidfile.read_text())
        process.close()
        await process.wait_closed()
    async with asyncio.timeout(10):
        while _alive(pid):
            await asyncio.sleep(0.02)
    assert not _alive(pid)


async def test_a_wrong_key_is_refused(fleet: SimFleet, tmp_path: Path) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519")
    with pytest.raises(asyncssh.PermissionDenied):
        async with asyncssh.connect(
            fleet.addresses[0],
            fleet.port,
            username="root",
            client_keys=[other],
            known_hosts=str(fleet.known_hosts_path),
            config=None,
        ):
            pass


def test_runs_as_a_separate_process_with_a_ready_file(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "muster.testing.simfleet",
            "--hosts",
            "3",
            "--base-address",
            "127.77.2.1",
            "--state-dir",
            str(tmp_path),
        ],
    )
    try:
        ready = tmp_path / "ready.json"
        deadline = 30.0
        start = time.monotonic()
        while not ready.exists():
            assert proc.poll() is None, "fleet process exited early"
            assert time.monotonic() - start < deadline, "no ready file"
            time.sleep(0.05)  # polling a file written by another process, bounded
        info = json.loads(ready.read_text())
        assert info["addresses"] == ["127.77.2.1", "127.77.2.2", "127.77.2.3"]
        out = subprocess.run(
            [
                "ssh",
                "-i",
                info["client_key"],
                "-p",
                str(info["port"]),
                "-o",
                f"UserKnownHostsFile={info['known_hosts']}",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-F",
                "/dev/null",
                "root@127.77.2.2",
                "echo $MUSTER_SIM_HOST",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert (out.returncode, out.stdout) == (0, "sim0002\n"), out.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"
