"""Workflows over a real OpenSSH sshd: the injection corpus through ``{{step_X.stdout}}``
on bash, dash, zsh and ksh, and seed 004's task graph through ``muster.Engine`` on 20
hosts in groups web/db/cache.

One sshd listening on several loopback addresses gives each host its own address
(DESIGN "Real components"); every login is a real SSH session.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import muster
from muster.domain.hosts import Host
from muster.domain.inventory import Inventory
from tests.fleet.sshd import SshdServer, free_port
from tests.integration.server.test_injection import corpus

pytestmark = pytest.mark.timeout(240)

REPO = Path(__file__).resolve().parents[3]

SHELLS = {"bash": "/bin/bash", "sh": "/bin/sh", "zsh": "/usr/bin/zsh", "ksh": "/usr/bin/ksh"}
ALL_SHELLS = ("bash", "sh", "zsh", "ksh")


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[list[SshdServer], list[Host]]]:
    """20 hosts on 127.0.9.1-20 (8 web, 6 db, 6 cache), answered by two real sshd
    processes on loopback (sshd listens on at most 16 addresses)."""
    port = free_port()
    addrs = [(f"127.0.9.{i}", port) for i in range(1, 21)]
    first = SshdServer(addrs[:10], workdir=tmp_path_factory.mktemp("wf-sshd-a")).start()
    servers = [first]
    try:
        servers.append(
            SshdServer(
                addrs[10:],
                workdir=tmp_path_factory.mktemp("wf-sshd-b"),
                client_key=first.client_key,
            ).start()
        )
        hosts = []
        for i, (addr, p) in enumerate(addrs, 1):
            group, n = ("web", i) if i <= 8 else (("db", i - 8) if i <= 14 else ("cache", i - 14))
            hosts.append(
                Host(
                    f"{group}{n}",
                    address=addr,
                    port=p,
                    user="root",
                    groups=(group,),
                    shells=ALL_SHELLS,
                )
            )
        yield servers, hosts
    finally:
        for server in servers:
            server.cleanup()


@pytest.fixture(scope="module")
def auth(
    fleet: tuple[list[SshdServer], list[Host]], tmp_path_factory: pytest.TempPathFactory
) -> muster.SSHAuth:
    servers, _ = fleet
    known = tmp_path_factory.mktemp("wf-known") / "known_hosts"
    known.write_text("".join(s.known_hosts_lines() for s in servers))
    return muster.SSHAuth.from_keyfile(servers[0].client_key, username="root", known_hosts=known)


def _yaml_string(value: str) -> str:
    """A YAML double-quoted scalar for any text (JSON is YAML)."""
    import json

    return json.dumps(value)


@pytest.mark.parametrize("shell", list(SHELLS))
def test_injection_corpus_through_step_stdout_prints_literally(
    shell: str, fleet: tuple[list[SshdServer], list[Host]], auth: muster.SSHAuth, tmp_path: Path
) -> None:
    if not shutil.which(SHELLS[shell]):
        pytest.skip(f"{SHELLS[shell]} is not installed")
    _, hosts = fleet
    canary = tmp_path / "canary"
    payloads = corpus(canary)
    # Each payload is printed by one step (as a parameter: the proven path) and read
    # back by a later step through {{step_emit_N.stdout}}, unquoted and inside quotes.
    # The emitter appends "|" so the value's own trailing newlines survive the
    # reference's trailing-newline rule.
    lines = [f"name: corpus-{shell}", "parameters:"]
    lines += [f"  - {{name: p{i}, type: string}}" for i in range(len(payloads))]
    lines.append("steps:")
    for i in range(len(payloads)):
        lines.append(
            f"  - {{id: emit_{i}, shell: {shell}, command: \"printf '%s|' {{{{params.p{i}}}}}\"}}"
        )
        show = f"printf '%s\\036' {{{{step_emit_{i}.stdout}}}} \"<{{{{step_emit_{i}.stdout}}}}>\""
        lines.append(
            f"  - {{id: show_{i}, shell: {shell}, depends_on: emit_{i}, "
            f"command: {_yaml_string(show)}}}"
        )
    definition = "\n".join(lines) + "\n"
    params = {f"p{i}": p for i, p in enumerate(payloads)}
    engine = muster.Engine([hosts[0]], auth, policy=muster.DispatchPolicy(forks=10))
    result = engine.execute(definition, params=params)
    assert result.status == "succeeded", {
        k: v.message for k, v in result.steps.items() if v.message
    }
    for i, payload in enumerate(payloads):
        value = payload + "|"
        shown = result.stdout(f"show_{i}", hosts[0].name)
        assert shown == f"{value}\x1e<{value}>\x1e", (shell, payload)
    assert not canary.exists(), "a payload was executed"


def test_seed_004_task_graph_on_twenty_hosts(
    fleet: tuple[list[SshdServer], list[Host]], auth: muster.SSHAuth, tmp_path: Path
) -> None:
    _, hosts = fleet
    inventory = Inventory()
    for host in hosts:
        inventory.add_host(host)
    backups = tmp_path / "backups"
    backups.mkdir()
    workflow = muster.MaintenanceWorkflow("os_patching")
    workflow.add_task(
        "backup",
        f'tar -czf {backups}/"$MUSTER_RUN_ID".tar.gz -C /etc hostname && echo backed up',
        targets=["*"],
    )
    workflow.add_task("update_repos", "echo repos updated", targets=["*"])
    workflow.add_task(
        "upgrade_packages", "echo upgraded", targets=["*"], depends_on=["update_repos"]
    )
    workflow.add_task(
        "restart_services",
        "echo restarted nginx",
        targets=["web"],
        depends_on=["upgrade_packages"],
    )
    workflow.add_task(
        "verify_web",
        "echo OK | grep -q 'OK' && echo healthy",
        targets=["web"],
        depends_on=["restart_services"],
    )
    workflow.set_parallelization({"max_parallel_servers": 10, "max_parallel_per_group": 5})

    result = muster.Engine(inventory, auth).execute(workflow)

    names = sorted(h.name for h in hosts)
    web = sorted(h.name for h in hosts if "web" in h.groups)
    assert result.status == "succeeded", {k: v.message for k, v in result.steps.items()}
    assert result.successful_servers == names
    assert result.failed_servers == []
    tasks = result.task_results
    assert sorted(tasks["backup"].hosts) == names
    assert sorted(tasks["restart_services"].hosts) == web
    assert sorted(tasks["verify_web"].hosts) == web
    assert {h.stdout for h in tasks["verify_web"].hosts.values()} == {"healthy\n"}
    assert len(list(backups.iterdir())) == 20


def test_seed_004_graph_reports_the_failed_servers(
    fleet: tuple[list[SshdServer], list[Host]], auth: muster.SSHAuth
) -> None:
    _, hosts = fleet
    workflow = muster.MaintenanceWorkflow("partial")
    workflow.add_task("update_repos", "echo ok", targets=["*"])
    workflow.add_task(
        "upgrade_packages",
        'case "$MUSTER_RUN_ID" in *_db3) echo broken >&2; exit 100;; esac; echo upgraded',
        targets=["*"],
        depends_on=["update_repos"],
    )
    workflow.add_task(
        "restart_services", "echo restarted", targets=["web"], depends_on=["upgrade_packages"]
    )
    result = muster.Engine(hosts, auth).execute(workflow)
    assert result.status == "failed"
    assert result.failed_servers == ["db3"]
    assert len(result.successful_servers) == 19
    assert result.steps["restart_services"].status == "skipped"
    outcome = result.task_results["upgrade_packages"].hosts["db3"]
    assert (outcome.exit_code, outcome.stderr) == (100, "broken\n")


def test_seed_004_yaml_is_the_same_workflow_as_the_python_builder(
    fleet: tuple[list[SshdServer], list[Host]], auth: muster.SSHAuth
) -> None:
    from muster.domain.workflows import workflow_hash

    built = muster.MaintenanceWorkflow(
        "os_patching", "backup, update, upgrade, restart the web servers, verify them"
    )
    built.add_task("backup", 'echo "backed up $(hostname)"', targets=["*"])
    built.add_task("update_repos", "echo repos updated", targets=["*"])
    built.add_task("upgrade_packages", "echo upgraded", targets=["*"], depends_on=["update_repos"])
    built.add_task(
        "restart_services", "echo restarted nginx", targets=["web"], depends_on=["upgrade_packages"]
    )
    built.add_task(
        "verify_web",
        "echo OK | grep -q 'OK' && echo healthy",
        targets=["web"],
        depends_on=["restart_services"],
    )
    built.set_parallelization({"max_parallel_servers": 10, "max_parallel_per_group": 5})
    text = (REPO / "examples" / "workflows" / "os_patching.yaml").read_text()
    assert workflow_hash(muster.load_workflow_text(text)) == workflow_hash(built.definition())

    _, hosts = fleet
    result = muster.Engine(hosts, auth).execute(text)
    assert result.status == "succeeded"
    assert len(result.successful_servers) == 20
    web = {h.name for h in hosts if "web" in h.groups}
    assert set(result.task_results["verify_web"].hosts) == web
