"""``muster script`` and ``muster exec`` as a user runs them against a live server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cli_kit import client_env
from tests.integration.server.harness import LiveServer, server_settings

MUSTER = str(Path(sys.executable).parent / "muster")


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    server = LiveServer(server_settings(tmp_path / "data"), localhost=True).start()
    env = client_env(server, tmp_path)
    try:
        yield server, env
    finally:
        server.stop()


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MUSTER, *args], capture_output=True, text=True, timeout=120, env=env)


def test_push_history_diff_and_execute(
    cli: tuple[LiveServer, dict[str, str]], tmp_path: Path
) -> None:
    _, env = cli
    script = tmp_path / "greet.sh"
    script.write_text("# muster:param n integer default=1\necho one ${n}\n")
    first = run(env, "script", "push", str(script), "--tag", "demo")
    assert first.returncode == 0, first.stderr
    assert "saved as version 1" in first.stdout
    script.write_text("# muster:param n integer default=1\necho two ${n}\n")
    assert "saved as version 2" in run(env, "script", "push", str(script)).stdout
    again = run(env, "script", "push", str(script))
    assert "unchanged at version 2" in again.stdout

    listed = json.loads(run(env, "script", "list", "--json").stdout)
    (greet,) = [s for s in listed if s["name"] == "greet"]
    assert greet["version"] == 2
    assert greet["tags"] == ["demo"], "a push without --tag keeps the tags"
    history = json.loads(run(env, "script", "history", "greet", "--json").stdout)
    assert [v["number"] for v in history] == [2, 1]
    diff = run(env, "script", "diff", "greet", "1")
    assert "-echo one ${n}" in diff.stdout and "+echo two ${n}" in diff.stdout
    old = json.loads(run(env, "script", "show", "greet", "--version", "1", "--json").stdout)
    assert "echo one" in old["body"]

    bad = run(env, "exec", "start", "greet", "--hosts", "localhost", "-p", "n=many")
    assert bad.returncode == 2
    assert "n: expected an integer" in bad.stderr

    done = run(
        env, "exec", "start", "greet", "--hosts", "localhost", "-p", "n=7", "--version", "1",
        "--follow",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "localhost | SUCCEEDED" in done.stdout and "\none 7\n" in done.stdout
    execution_id = done.stdout.split()[1].rstrip(":")
    status = json.loads(run(env, "exec", "status", execution_id, "--json").stdout)
    assert status["status"] == "succeeded" and status["script_version"] == 1
    logs = run(env, "exec", "logs", execution_id)
    assert "localhost | one 7" in logs.stdout

    limited = run(
        env, "exec", "start", "greet", "--hosts", "localhost", "-p", "n=1",
        "--forks", "2", "--per-group", "1", "--delay", "1m30s", "--json",
    )  # fmt: skip
    assert limited.returncode == 0, limited.stderr
    assert json.loads(limited.stdout)["throttle"] == {"forks": 2, "per_group": 1, "delay": 90.0}
    refused = run(env, "exec", "start", "greet", "--hosts", "localhost", "--delay", "soon")
    assert refused.returncode == 2 and "delay" in refused.stderr


def test_failed_execution_exits_nonzero_and_retry_queues_a_new_attempt(
    cli: tuple[LiveServer, dict[str, str]], tmp_path: Path
) -> None:
    _, env = cli
    script = tmp_path / "fail.sh"
    script.write_text("echo boom >&2; exit 4\n")
    assert run(env, "script", "push", str(script)).returncode == 0
    done = run(env, "exec", "start", "fail", "--hosts", "localhost", "--follow")
    assert done.returncode == 1, done.stdout + done.stderr
    execution_id = done.stdout.split()[1].rstrip(":")
    retried = run(env, "exec", "retry", execution_id)
    assert retried.returncode == 0, retried.stderr
    status = json.loads(run(env, "exec", "status", execution_id, "--json").stdout)
    assert status["hosts"][0]["attempt"] == 2


def test_unreachable_server_is_one_clear_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUSTER_")}
    env.update(MUSTER_URL="http://127.0.0.1:9", XDG_CONFIG_HOME=str(tmp_path))
    proc = run(env, "script", "list")
    assert proc.returncode == 2
    assert "cannot reach the muster server at http://127.0.0.1:9" in proc.stderr


def test_follow_shows_hostile_output_as_run_does(
    cli: tuple[LiveServer, dict[str, str]], tmp_path: Path
) -> None:
    """``exec start --follow`` prints through the same report as ``muster run``:
    escapes made visible, markup as text, events as key=value, --output-dir files."""
    _, env = cli
    script = tmp_path / "hostile.sh"
    script.write_text(
        "printf '\\033[2J[bold]x[/x]\\n10%%\\r100%%\\n'\n"
        """echo '@@{"step": "done", "n": 2}'\n"""
        "printf '\\377bad\\n'\n"
        "echo 'oops [red]' >&2\n"
    )
    assert run(env, "script", "push", str(script)).returncode == 0
    streamed = run(env, "exec", "start", "hostile", "--hosts", "localhost", "--follow", "--stream")
    assert streamed.returncode == 0, streamed.stdout + streamed.stderr
    lines = streamed.stdout.splitlines()
    for expected in (
        "localhost | ^[[2J[bold]x[/x]",
        "localhost | 100%",
        "localhost | @@ step=done n=2",
        "localhost | \ufffdbad",
        "localhost ! oops [red]",
    ):
        assert expected in lines, streamed.stdout
    assert "\x1b" not in streamed.stdout
    assert "step=done n=2" in streamed.stdout.split("localhost | SUCCEEDED")[1]  # summary

    out = tmp_path / "out"
    full = run(
        env, "exec", "start", "hostile", "--hosts", "localhost", "--follow",
        "--output", "full", "--output-dir", str(out),
    )  # fmt: skip
    assert full.returncode == 0, full.stdout + full.stderr
    assert "localhost | SUCCEEDED | rc=0\n^[[2J[bold]x[/x]\n100%\n@@ step=done n=2\n" in full.stdout
    assert "--- stderr\noops [red]\n" in full.stdout
    kept = (out / "localhost.stdout").read_bytes().decode()
    assert kept == '\x1b[2J[bold]x[/x]\n10%\r100%\n@@{"step": "done", "n": 2}\n\ufffdbad\n'
    assert (out / "localhost.stderr").read_text() == "oops [red]\n"
    refused = run(env, "exec", "start", "hostile", "--hosts", "localhost", "--stream")
    assert refused.returncode == 2 and "--follow" in refused.stderr
