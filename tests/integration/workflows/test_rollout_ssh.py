"""Seed 004's library example over real OpenSSH sshd, run as written except that the
commands are harmless stand-ins and the windows are built around now:

* all green in four waves (canary, the other web servers, the databases, the caches);
* a verification failure injected on a wave-2 host stops the rollout and rolls back
  wave 2, then wave 1; the evidence per host, ``status``, ``failed_servers`` and
  ``verification_results`` say exactly what happened.

Every host is a loopback address answered by one sshd; a command learns which
host it is on from ``$SSH_CONNECTION`` (the server address), and writes its state
files and the shared log under a directory of the test.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

import muster
from muster.domain.hosts import Host
from tests.fleet.sshd import SshdServer, free_port

pytestmark = pytest.mark.timeout(240)

NAMES = (
    "web01.example.com",
    "web02.example.com",
    "web03.example.com",
    "db01.example.com",
    "db02.example.com",
    "cache01.example.com",
    "cache02.example.com",
)
ME = 'set -- $SSH_CONNECTION; ip="$3"'


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SshdServer, dict[str, str]]]:
    port = free_port()
    addrs = [(f"127.0.14.{i}", port) for i in range(1, len(NAMES) + 1)]
    server = SshdServer(addrs, workdir=tmp_path_factory.mktemp("rollout-sshd")).start()
    try:
        yield server, {name: addr for name, (addr, _) in zip(NAMES, addrs, strict=True)}
    finally:
        server.cleanup()


def _window_around_now() -> str:
    now = dt.datetime.now(dt.UTC)
    a, b = now - dt.timedelta(hours=1), now + dt.timedelta(hours=2)
    return f"* {a:%H:%M}-{b:%H:%M} UTC"


def _seed_004(
    sshd: tuple[SshdServer, dict[str, str]], state: Path
) -> tuple[muster.Engine, muster.MaintenanceWorkflow]:
    server, address = sshd
    port = server.listen[0][1]
    log = state / "log"
    for addr in address.values():
        (state / f"pkgs-{addr}").write_text("ii  openssl 3.0.11-1\nii  bash 5.2-1\n")

    # -- seed 004, as written (stand-in commands, test addresses, windows around now) --
    inventory = muster.Inventory()
    for name, addr in address.items():
        inventory.add_host(Host(name, address=addr, port=port, user="root", shells=("sh",)))
    inventory.add_group(
        "web_servers", ["web01.example.com", "web02.example.com", "web03.example.com"]
    )
    inventory.add_group("db_servers", ["db01.example.com", "db02.example.com"])
    inventory.add_group("cache_servers", ["cache01.example.com", "cache02.example.com"])

    known = state / "known_hosts"
    known.write_text(server.known_hosts_lines())
    auth = muster.SSHAuth.from_keyfile(server.client_key, username="root", known_hosts=known)

    workflow = muster.MaintenanceWorkflow("os_patching")
    workflow.add_task(
        "backup",
        f'{ME}; cp {state}/pkgs-$ip {state}/backup-$ip && echo "$ip backup" >> {log}',
        targets=["*"],
        rollback=f'{ME}; echo "$ip undo-backup" >> {log}',
    )
    workflow.add_task("update_repos", "echo repos updated", targets=["*"])
    workflow.add_task(
        "upgrade_packages",
        # The stand-in upgrade raises openssl's version, unless the host is marked broken.
        f"{ME}; v=3.0.13-1; [ -f {state}/broken-$ip ] && v=3.0.2-1; "
        f"printf 'ii  openssl %s\\nii  bash 5.2-1\\n' $v > {state}/pkgs-$ip; "
        f'echo "$ip upgrade" >> {log}',
        targets=["*"],
        depends_on=["update_repos"],
        # (backup and upgrade are not ordered in the seed's graph: the stand-in
        # downgrade writes the old version rather than trusting the backup)
        rollback=f"{ME}; printf 'ii  openssl 3.0.11-1\\nii  bash 5.2-1\\n' > {state}/pkgs-$ip; "
        f'echo "$ip undo-upgrade" >> {log}',
    )
    workflow.add_task(
        "restart_services",
        "echo restarted nginx",
        targets=["web_servers"],
        depends_on=["upgrade_packages"],
    )
    workflow.add_task(
        "verify_web",
        "echo OK | grep -q 'OK'",
        targets=["web_servers"],
        depends_on=["restart_services"],
    )
    workflow.set_progressive_execution(
        {
            "groups": [
                ["web01.example.com"],  # Canary server
                ["web02.example.com", "web03.example.com"],  # Rest of web servers
                ["db_servers"],  # Database servers
                ["cache_servers"],  # Cache servers
            ],
            "verification_tasks": ["verify_web"],
            "auto_rollback": True,
        }
    )
    workflow.add_verification(
        "verify_package_versions",
        {
            "before_tasks": ["backup"],
            "after_tasks": ["upgrade_packages"],
            "commands": {"package_versions": f"{ME}; grep -E 'openssl|bash' {state}/pkgs-$ip"},
            "comparisons": {
                "package_versions": {
                    "type": "regex_match",
                    "pattern": r"ii\s+openssl\s+(\S+)",
                    "expected_change": "version_increase",
                }
            },
        },
    )
    workflow.set_maintenance_window(
        {
            "web_servers": _window_around_now(),
            "db_servers": _window_around_now(),
            "cache_servers": _window_around_now(),
        }
    )
    workflow.set_parallelization(
        {"max_parallel_servers": 10, "max_parallel_per_group": 5, "delay_between_servers": "2s"}
    )
    engine = muster.Engine(inventory, auth)
    return engine, workflow


def _log(state: Path, address: dict[str, str]) -> list[tuple[str, str]]:
    by_addr = {a: n.split(".")[0] for n, a in address.items()}
    out = []
    for line in (state / "log").read_text().splitlines():
        addr, what = line.split()
        out.append((by_addr[addr], what))
    return out


def test_seed_004_rolls_out_in_four_green_waves(
    sshd: tuple[SshdServer, dict[str, str]], tmp_path: Path
) -> None:
    engine, workflow = _seed_004(sshd, tmp_path)
    result = engine.execute(workflow)

    assert result.status == "succeeded", result.message
    assert len(result.successful_servers) == 7
    assert len(result.failed_servers) == 0
    assert [w.hosts for w in result.waves] == [
        ("web01.example.com",),
        ("web02.example.com", "web03.example.com"),
        ("db01.example.com", "db02.example.com"),
        ("cache01.example.com", "cache02.example.com"),
    ]
    assert [w.status.value for w in result.waves] == ["succeeded"] * 4
    evidence = result.verification_results["verify_package_versions"]
    assert sorted(evidence) == sorted(NAMES)
    for ev in evidence.values():
        check = ev.checks[0]
        assert (ev.passed, check.before_value, check.after_value) == (True, "3.0.11-1", "3.0.13-1")
    order = [host for host, what in _log(tmp_path, sshd[1]) if what == "upgrade"]
    assert order[0] == "web01" and set(order[1:3]) == {"web02", "web03"}
    assert set(order[3:5]) == {"db01", "db02"} and set(order[5:]) == {"cache01", "cache02"}
    assert sorted(result.task_results["verify_web"].hosts) == [n for n in NAMES if "web" in n]


def test_a_verification_failure_on_a_wave_2_host_rolls_back_waves_2_then_1(
    sshd: tuple[SshdServer, dict[str, str]], tmp_path: Path
) -> None:
    _, address = sshd
    (tmp_path / f"broken-{address['web03.example.com']}").touch()
    engine, workflow = _seed_004(sshd, tmp_path)
    result = engine.execute(workflow)

    assert result.status == "rolled_back", result.message
    assert result.failed_servers == ["web03.example.com"]
    assert result.successful_servers == ["web01.example.com", "web02.example.com"]
    assert [w.status.value for w in result.waves] == [
        "rolled_back",
        "rolled_back",
        "not_run",
        "not_run",
    ]
    failure = result.waves[1].failed_hosts["web03.example.com"]
    assert (failure.reason, failure.gate) == ("verification_failed", True)
    gate = result.waves[1].gate
    assert gate is not None and not gate.passed
    assert "verification failed on 1 host(s): web03.example.com" in gate.why

    evidence = result.verification_results["verify_package_versions"]
    assert sorted(evidence) == ["web01.example.com", "web02.example.com", "web03.example.com"]
    bad = evidence["web03.example.com"]
    assert not bad.passed
    assert (bad.checks[0].before_value, bad.checks[0].after_value) == ("3.0.11-1", "3.0.2-1")
    assert evidence["web02.example.com"].passed and evidence["web01.example.com"].passed
    exported = result.to_dict()["verification_results"]["verify_package_versions"]
    assert exported["web03.example.com"]["passed"] is False

    undo = [(h, w) for h, w in _log(tmp_path, address) if w.startswith("undo")]
    assert sorted(undo[:4]) == [
        ("web02", "undo-backup"),
        ("web02", "undo-upgrade"),
        ("web03", "undo-backup"),
        ("web03", "undo-upgrade"),
    ]
    assert undo[4:] == [("web01", "undo-upgrade"), ("web01", "undo-backup")]
    assert set(result.rollback) == {"web01.example.com", "web02.example.com", "web03.example.com"}
    assert all(o.state.value == "rolled_back" for o in result.rollback.values())
    assert result.flagged_hosts == []
    # The rollback restored what was there before.
    assert "3.0.11-1" in (tmp_path / f"pkgs-{address['web03.example.com']}").read_text()
    assert not any(w for h, w in _log(tmp_path, address) if h.startswith(("db", "cache")))
