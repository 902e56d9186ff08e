"""``muster run`` and ``muster inventory list`` as an operator runs them: a real
process, real local commands, and real OpenSSH sshd hosts on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fleet.sshd import SshdServer, free_port

REPO = Path(__file__).resolve().parents[2]
MUSTER = [sys.executable, "-m", "muster.cli.main"]


def muster(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [*MUSTER, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_localhost_needs_no_inventory() -> None:
    proc = muster("run", "localhost", "--", "echo", "hello-from-muster")
    assert proc.returncode == 0, proc.stderr
    assert "hello-from-muster" in proc.stdout
    assert "localhost" in proc.stdout and "succeeded" in proc.stdout


def test_json_document_has_every_host_run() -> None:
    proc = muster(
        "run", "-i", "examples/inventory.ini", "web:&dc1", "--json", "--", "echo $MUSTER_X; true"
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "succeeded"
    assert sorted(h["host"] for h in doc["hosts"]) == ["web1.dc1", "web2.dc1"]
    assert all(h["exit_code"] == 0 and h["state"] == "succeeded" for h in doc["hosts"])


def test_failing_host_exits_nonzero_and_summary_names_stderr() -> None:
    proc = muster("run", "localhost", "--", "echo disk full >&2; exit 3")
    assert proc.returncode == 1
    assert "failed" in proc.stdout
    assert "disk full" in proc.stdout
    assert "3" in proc.stdout


def test_script_with_parameters(tmp_path: Path) -> None:
    target = tmp_path / "www"
    proc = muster(
        "run", "-i", "examples/hosts.yml", "web:&dc2", "--json",
        "--script", "examples/patch.sh",
        "--param", f"target_dir={target}", "--param", "dry_run=false",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert {h["host"] for h in doc["hosts"]} == {"web1.dc2", "web2.dc2"}
    assert (target / ".muster-patched").exists()
    assert all("patched:" in h["stdout"] for h in doc["hosts"])


def test_bad_parameters_are_named_and_nothing_runs(tmp_path: Path) -> None:
    target = tmp_path / "never"
    proc = muster(
        "run", "localhost", "--script", "examples/patch.sh",
        "--param", f"target_dir={target}", "--param", "dry_run=perhaps", "--param", "bogus=1",
    )  # fmt: skip
    assert proc.returncode == 2
    assert "dry_run" in proc.stderr and "bogus" in proc.stderr
    assert not target.exists()


def test_selector_matching_nothing_is_an_error() -> None:
    proc = muster("run", "-i", "examples/inventory.ini", "nosuch*", "--", "true")
    assert proc.returncode == 1
    assert "matches no host" in proc.stderr


def test_inventory_list_shows_what_a_selector_picks() -> None:
    proc = muster("inventory", "list", "-i", "examples/inventory.ini", "web:&dc1", "--json")
    assert proc.returncode == 0, proc.stderr
    assert [h["name"] for h in json.loads(proc.stdout)] == ["web1.dc1", "web2.dc1"]


@pytest.fixture
def three_ssh_hosts(
    tmp_path: Path, fleet_client_key: Path
) -> Iterator[tuple[Path, Path, SshdServer]]:
    """Three loopback addresses answered by one real sshd, as an Ansible inventory."""
    port = free_port()
    addrs = [(f"127.0.0.{i}", port) for i in (2, 3, 4)]
    server = SshdServer(addrs, client_key=fleet_client_key).start()
    try:
        inventory = tmp_path / "hosts.ini"
        inventory.write_text(
            "[web]\n"
            + "".join(
                f"web{i} ansible_host={a} ansible_port={p} ansible_user=root\n"
                for i, (a, p) in enumerate(addrs, 1)
            )
        )
        known = server.write_known_hosts(tmp_path / "known_hosts", addrs)
        yield inventory, known, server
    finally:
        server.cleanup()


def test_ssh_fleet_command_and_script(
    three_ssh_hosts: tuple[Path, Path, SshdServer], fleet_client_key: Path, tmp_path: Path
) -> None:
    inventory, known, _ = three_ssh_hosts
    common = ["-i", str(inventory), "--key", str(fleet_client_key), "--known-hosts", str(known)]
    proc = muster("run", "web", *common, "--json", "--forks", "2", "--", "echo", "over-ssh")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert [h["state"] for h in doc["hosts"]] == ["succeeded"] * 3
    assert all(h["stdout"] == "over-ssh\n" for h in doc["hosts"])

    script = tmp_path / "greet.sh"
    script.write_text(
        "# muster:param who string required\n# muster:param token secret\n"
        'printf "%s|%s" ${who} "${#MUSTER_PARAM_TOKEN}"\n'
    )
    value = 'it\'s $(rm -rf /) `x` ; | & "q"'
    proc = muster(
        "run", "web1,web3", *common, "--json", "--script", str(script),
        "--param", f"who={value}", "--param", "token=s3cr3t-token",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert {h["host"]: h["stdout"] for h in doc["hosts"]} == {
        "web1": f"{value}|12",
        "web3": f"{value}|12",
    }
    assert "s3cr3t-token" not in proc.stdout + proc.stderr


def test_ssh_unknown_host_key_is_refused_under_strict(
    three_ssh_hosts: tuple[Path, Path, SshdServer], fleet_client_key: Path, tmp_path: Path
) -> None:
    inventory, _, _ = three_ssh_hosts
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    args = ["run", "web2", "-i", str(inventory), "--key", str(fleet_client_key)]
    proc = muster(*args, "--known-hosts", str(empty), "--json", "--", "true")
    assert proc.returncode == 1
    (host,) = json.loads(proc.stdout)["hosts"]
    assert host["state"] == "failed"
    assert host["reason"] in ("host_key_unknown", "host_key_mismatch")

    proc = muster(
        *args,
        "--known-hosts",
        str(empty),
        "--host-key-policy",
        "accept-new",
        "--json",
        "--",
        "true",
    )
    assert proc.returncode == 0, proc.stdout
    assert "127.0.0.3" in empty.read_text()


def test_stream_and_output_dir_keep_host_output_apart_and_whole(tmp_path: Path) -> None:
    """--stream prefixes whole lines; --output-dir keeps the bytes as printed, with
    --json too; a host's escapes never reach the terminal output."""
    command = "printf 'one\\n\\033]0;title\\007two [bold]\\n'; printf 'no newline'; echo e >&2"
    proc = muster("run", "-i", "examples/inventory.ini", "web:&dc1", "--stream", "--", command)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for host in ("web1.dc1", "web2.dc1"):
        assert f"{host} | one" in lines
        assert f"{host} | ^[]0;title^Gtwo [bold]" in lines
        assert f"{host} | no newline" in lines
        assert f"{host} ! e" in lines
    assert "\x1b" not in proc.stdout

    out = tmp_path / "out"
    proc = muster("run", "localhost", "--json", "--output-dir", str(out), "--", command)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["hosts"][0]["stdout"].startswith("one\n")
    assert (out / "localhost.stdout").read_bytes() == b"one\n\x1b]0;title\x07two [bold]\nno newline"
    assert (out / "localhost.stderr").read_bytes() == b"e\n"

    refused = muster("run", "localhost", "--stream", "--json", "--", "true")
    assert refused.returncode == 2 and "--stream" in refused.stderr


def test_on_a_terminal_colour_is_kept_and_nothing_else_passes(tmp_path: Path) -> None:
    """Under a real pseudo-terminal: a host's SGR colour reaches the screen (reset at
    the line end), its screen-clearing and title sequences are shown, not obeyed, and
    the status line is erased before output and at the end."""
    import pty

    command = "printf '\\033[31mred\\n\\033[2J\\033]0;t\\007after\\n'"
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env.update(COLUMNS="120", TERM="xterm")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*MUSTER, "run", "localhost", "--", command],
        cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
    )  # fmt: skip
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=120) == 0
    screen = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    assert "\x1b[31mred\x1b[0m\n" in screen
    assert "^[[2J^[]0;t^Gafter\n" in screen
    assert "\x1b[2J" not in screen and "\x1b]0;" not in screen
    assert "\r\x1b[2K" in screen  # the status line was there and was erased
