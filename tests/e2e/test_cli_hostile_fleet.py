"""``muster run``'s human output of hostile hosts over real OpenSSH sshd (issue 16).

Seven loopback hosts (one real sshd answering seven addresses; more than
:data:`~muster.cli.human.FEW_HOSTS`, so grouped is the default) each print
escape sequences, Rich markup, invalid UTF-8, a ``\\r`` progress bar, an
``@@{json}`` event and a 20 MB line without a newline; one of them also fails.
The unit tests feed :class:`~muster.cli.human.HumanReport` directly; these run
the real CLI over the real transport, whose decoder and chunking decide what
reaches the report.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fleet.sshd import SshdServer, free_port

REPO = Path(__file__).resolve().parents[2]
MUSTER = [sys.executable, "-m", "muster.cli.main"]
HOSTS = 7
LINE = 20_000_000
#: What must never reach a file or pipe from host output: ESC, C0/C1 controls but
#: tab and newline (no colour either: stdout is not a terminal).
DANGEROUS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

#: Every host prints this; the host at .7 also fails with 'disk full'.
HOSTILE = (
    r"printf 'ok [bold]markup[/] [/x]\n\033[2J\033]0;title\007\033[31mred\033[0m\n'; "
    r"printf '10%%\r55%%\r100%%\r\n'; "
    r"printf 'bad \377\376 utf-8 \303\n'; "
    r"""printf '@@{"step": "migrate", "n": 3, "note": "[red]x"}\n'; """
    rf"head -c {LINE} /dev/zero | tr '\0' x; "
    r"""case "$SSH_CONNECTION" in *" 127.0.17.7 "*) echo disk full >&2; exit 3;; esac"""
)


@pytest.fixture
def hostile_fleet(tmp_path: Path, fleet_client_key: Path) -> Iterator[list[str]]:
    """The common ``muster run`` arguments for seven sshd hosts web1..web7."""
    port = free_port()
    addrs = [(f"127.0.17.{i}", port) for i in range(1, HOSTS + 1)]
    server = SshdServer(addrs, client_key=fleet_client_key).start()
    try:
        inventory = tmp_path / "hosts.ini"
        inventory.write_text(
            "".join(
                f"web{i} ansible_host={a} ansible_port={p} ansible_user=root\n"
                for i, (a, p) in enumerate(addrs, 1)
            )
        )
        known = server.write_known_hosts(tmp_path / "known_hosts", addrs)
        yield ["-i", str(inventory), "*", "--key", str(fleet_client_key),
               "--known-hosts", str(known)]  # fmt: skip
    finally:
        server.cleanup()


def _run(common: list[str], *extra: str) -> tuple[int, str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    proc = subprocess.run(
        [*MUSTER, "run", *common, *extra, "--", HOSTILE],
        cwd=REPO, env=env, capture_output=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert not proc.stderr.strip(), proc.stderr.decode("utf-8", "replace")[-2000:]
    return proc.returncode, proc.stdout.decode("utf-8")  # the CLI writes valid UTF-8


def _before_summary(text: str) -> str:
    return text[: text.index("execution failed")]


def test_grouped_default_prints_each_distinct_result_once_inert(
    hostile_fleet: list[str], tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    code, text = _run(hostile_fleet, "--output-dir", str(out_dir))
    assert code == 1
    assert len(text) < 100_000, "more than the stated cap per host reached the terminal"
    hosts_part = _before_summary(text)
    assert not DANGEROUS.search(hosts_part), repr(DANGEROUS.search(hosts_part))
    headers = [ln for ln in text.splitlines() if ln.startswith("===")]
    assert headers == [
        "=== 6 hosts: SUCCEEDED, same output, exit 0",
        "=== web7: FAILED, exit 3, 'disk full'",
    ]
    assert "    web1, web2, web3, web4, web5, web6\n" in text
    # Each group's output once: markup as text, escapes shown, the bar's last state,
    # invalid bytes replaced, the event as key=value, the long line cut with a pointer.
    assert text.count("ok [bold]markup[/] [/x]\n^[[2J^[]0;title^Gred\n100%\n") == 2
    assert text.count("bad \ufffd\ufffd utf-8 \ufffd\n@@ step=migrate n=3 note=[red]x\nxxx") == 2
    assert '@@{"step"' not in hosts_part
    # The pointer names the group's host whose output is shown (the first to end).
    assert re.search(rf"the rest: {re.escape(str(out_dir))}/web[1-6]\.stdout\]", text)
    assert f"the rest: {out_dir}/web7.stdout]" in text
    assert "of 19.1 MiB (the same on every host of the group)" in text
    # The summary lists each host's event (few hosts, few events).
    assert text.count("step=migrate n=3 note=[red]x") == 2 + HOSTS
    assert "6 succeeded" in text and "1 failed" in text
    # The files keep every byte, as decoded (invalid UTF-8 replaced) and unaltered.
    for i in range(1, HOSTS + 1):
        data = (out_dir / f"web{i}.stdout").read_bytes()
        assert data.startswith(b"ok [bold]markup[/] [/x]\n\x1b[2J\x1b]0;title\x07")
        assert b"10%\r55%\r100%\r\n" in data
        assert data.endswith(b"x" * 1000) and len(data) > LINE
    assert (out_dir / "web7.stderr").read_text() == "disk full\n"
    assert (out_dir / "web1.stderr").read_text() == ""


def test_stream_prefixes_every_line_and_cuts_the_endless_one(
    hostile_fleet: list[str], tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    code, text = _run(hostile_fleet, "--stream", "--output-dir", str(out_dir))
    assert code == 1
    hosts_part = _before_summary(text)
    assert not DANGEROUS.search(hosts_part)
    assert len(hosts_part) < HOSTS * 6_000
    assert f"output of every host: {out_dir}/HOST.stdout|stderr\n" in hosts_part
    lines = [ln for ln in hosts_part.splitlines() if ln.strip() and "output of every" not in ln]
    host_line = re.compile(r"^web[1-7] ([|!] |\| (SUCCEEDED|FAILED) \| rc=\d)")
    assert lines and all(host_line.match(ln) for ln in lines), [
        ln[:80] for ln in lines if not host_line.match(ln)
    ]
    for i in range(1, HOSTS + 1):
        mine = [ln for ln in lines if ln.startswith(f"web{i} | ")]
        assert mine[:5] == [
            f"web{i} | ok [bold]markup[/] [/x]",
            f"web{i} | ^[[2J^[]0;title^Gred",
            f"web{i} | 100%",
            f"web{i} | bad \ufffd\ufffd utf-8 \ufffd",
            f"web{i} | @@ step=migrate n=3 note=[red]x",
        ]
        long_line = mine[5]  # printed when the host ends: it never ended itself
        assert long_line.startswith(f"web{i} | xxxx")
        whole = re.escape(f"; the whole line: {out_dir}/web{i}.stdout]")
        assert re.search(rf"xxx \[muster: line cut, \d+ more characters{whole}$", long_line)
        assert (out_dir / f"web{i}.stdout").stat().st_size > LINE
    assert "web7 ! disk full" in lines
    assert "web7 | FAILED | rc=3" in "\n".join(lines)


def test_full_and_none(hostile_fleet: list[str], tmp_path: Path) -> None:
    code, text = _run(hostile_fleet, "--output", "full")
    assert code == 1
    hosts_part = _before_summary(text)
    assert not DANGEROUS.search(hosts_part)
    for i in range(1, HOSTS + 1):
        assert re.search(rf"^web{i} \| (SUCCEEDED|FAILED) \| rc=[03] \| ", text, re.MULTILINE)
    assert hosts_part.count("ok [bold]markup[/] [/x]\n") == HOSTS
    assert hosts_part.count("--output-dir DIR keeps every byte") == HOSTS

    code, text = _run(hostile_fleet, "--output", "none")
    assert code == 1
    assert "markup" not in text and "xxxx" not in text
    assert "web7" in text and "disk full" in text  # the summary names the failure
    code, doc_text = _run(hostile_fleet, "--json")
    assert code == 1
    hosts = json.loads(doc_text)["hosts"]
    assert all(h["events"] == [{"step": "migrate", "n": 3, "note": "[red]x"}] for h in hosts)
