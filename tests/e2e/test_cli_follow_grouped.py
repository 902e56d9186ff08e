"""``muster exec start --follow`` groups a server's execution as ``muster run`` does
(issue 16): seven simulated SSH hosts behind a live server with its embedded
worker, hostile output, one host failing; the CLI reads the server's event
stream in its own process."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from muster.app import SshOptions, default_transports
from muster.server.embedded import embedded_worker_factory
from muster.testing.simfleet import SimFleet
from tests.e2e.cli_kit import client_env
from tests.integration.server.conftest import register_fleet
from tests.integration.server.harness import LiveServer, server_settings

MUSTER = str(Path(sys.executable).parent / "muster")
HOSTS = 7
DANGEROUS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

SCRIPT = (
    "printf 'ok [bold]markup[/] [/x]\\n\\033[2J\\033]0;t\\007\\n10%%\\r100%%\\n'\n"
    "printf 'bad \\377 utf-8\\n'\n"
    """echo '@@{"step": "migrate", "n": 3}'\n"""
    "head -c 1000000 /dev/zero | tr '\\0' x\n"
    'case "$MUSTER_SIM_HOST" in *7) echo disk full >&2; exit 3;; esac\n'
)


@pytest.fixture
def served_fleet(tmp_path: Path) -> Iterator[tuple[dict[str, str], list[str]]]:
    """The CLI's environment for a live server with seven registered SSH hosts."""
    fleet = SimFleet(HOSTS, base_address="127.78.0.1").start_in_thread()
    try:
        transports = default_transports(SshOptions(known_hosts=str(fleet.known_hosts_path)))
        server = LiveServer(
            server_settings(tmp_path / "data"),
            worker_factory=embedded_worker_factory(transports),
        ).start()
        try:
            with server.client() as api:
                names = register_fleet(api, fleet)
            env = client_env(server, tmp_path, NO_COLOR="1")
            yield env, names
        finally:
            server.stop()
    finally:
        fleet.stop_thread()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MUSTER, *args], capture_output=True, text=True, timeout=180, env=env)


def test_follow_groups_identical_hosts_once(
    served_fleet: tuple[dict[str, str], list[str]], tmp_path: Path
) -> None:
    env, names = served_fleet
    script = tmp_path / "hostile.sh"
    script.write_text(SCRIPT)
    assert _cli(env, "script", "push", str(script)).returncode == 0
    proc = _cli(env, "exec", "start", "hostile", "--hosts", ",".join(names), "--follow")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr
    text = proc.stdout
    hosts_part = text[: text.index("execution ", text.index("==="))]
    assert not DANGEROUS.search(hosts_part), repr(DANGEROUS.search(hosts_part))
    headers = [ln for ln in text.splitlines() if ln.startswith("===")]
    assert headers == [
        "=== 6 hosts: SUCCEEDED, same output, exit 0",
        "=== sim0007: FAILED, exit 3, 'disk full'",
    ]
    assert "    sim0001, sim0002, sim0003, sim0004, sim0005, sim0006\n" in text
    body = (
        "ok [bold]markup[/] [/x]\n^[[2J^[]0;t^G\n100%\nbad \ufffd utf-8\n@@ step=migrate n=3\nxxx"
    )
    assert hosts_part.count(body) == 2
    assert hosts_part.count("(the same on every host of the group)") == 1
    assert "--- stderr\ndisk full\n" in hosts_part
    assert text.count("step=migrate n=3") == 2 + HOSTS  # the groups, then the summary
    assert "6 succeeded" in text and "1 failed" in text

    # ``exec status`` afterwards: the same hosts and ends, as a table.
    execution_id = text.split()[1].rstrip(":")
    status = _cli(env, "exec", "status", execution_id)
    assert status.returncode == 1, status.stdout + status.stderr
    rows = [ln for ln in status.stdout.splitlines() if "sim000" in ln]
    assert len(rows) == HOSTS and sum("failed" in ln for ln in rows) == 1
    assert "sim0007" in next(ln for ln in rows if "failed" in ln)
