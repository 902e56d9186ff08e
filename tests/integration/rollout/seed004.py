"""Seed 004's library example, as written, with harmless stand-in commands.

What differs from the seed's text, and why:

* the fleet is 20 namespace hosts, so each group holds more hosts and the
  second wave ("rest of web servers") names every web server but the canary;
  the hosts are added with their addresses before the seed's ``add_group``;
* each command writes files under the test's own directory instead of
  touching the system: a host's "package list" is ``pkgs-<ip>``, and every
  task appends ``<ip> <what> <monotonic ns>`` to a shared log (namespaces share
  the filesystem; a command learns which host it is on from the server
  address in ``$SSH_CONNECTION``), so tests can check order from timestamps;
* the maintenance windows are built around now (the seed's are on Sunday);
* the tasks the seed does not undo get stand-in rollbacks, so a rollback
  leaves a trace per host and step.

Knobs for failure tests: a file ``broken-<ip>`` makes the stand-in upgrade
write an *older* openssl (the verification fails); ``hang-<ip>`` makes it
touch ``started-<ip>`` and wait (at most a minute) until the file is gone, so a
test can cut the host off mid-step and then let the step finish there unseen.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import muster
from muster.app import SshOptions
from muster.domain.hosts import Host

WEB = tuple(f"web{i:02d}.example.com" for i in range(1, 9))
DB = tuple(f"db{i:02d}.example.com" for i in range(1, 7))
CACHE = tuple(f"cache{i:02d}.example.com" for i in range(1, 7))
NAMES = WEB + DB + CACHE
#: The seed's four waves, as host names.
WAVES = ((WEB[0],), WEB[1:], DB, CACHE)

_ME = 'set -- $SSH_CONNECTION; ip="$3"'
_OLD = "ii  openssl 3.0.11-1\\nii  bash 5.2-1\\n"


def _window_around_now() -> str:
    now = dt.datetime.now(dt.UTC)
    a, b = now - dt.timedelta(hours=1), now + dt.timedelta(hours=2)
    return f"* {a:%H:%M}-{b:%H:%M} UTC"


def _log(state: Path, what: str) -> str:
    return f'echo "$ip {what} $(date +%s%N)" >> {state}/log'


def seed_004(
    addresses: Mapping[str, str],
    client_key: Path,
    known_hosts: Path,
    state: Path,
    *,
    ssh: Mapping[str, Any] | None = None,
    rollout: Mapping[str, Any] | None = None,
) -> tuple[muster.Engine, muster.MaintenanceWorkflow]:
    """The seed's engine and workflow; ``ssh`` overrides SshOptions fields
    (keepalives), ``rollout`` adds progressive-execution keys (rollback_retry)."""
    for addr in addresses.values():
        (state / f"pkgs-{addr}").write_text(_OLD.replace("\\n", "\n"))

    # Define server inventory (the hosts first: the seed's names need addresses).
    inventory = muster.Inventory()
    for name in NAMES:
        inventory.add_host(Host(name, address=addresses[name], user="root", shells=("sh",)))
    inventory.add_group("web_servers", list(WEB))
    inventory.add_group("db_servers", list(DB))
    inventory.add_group("cache_servers", list(CACHE))

    # Define authentication
    auth: muster.SSHAuth | SshOptions = muster.SSHAuth.from_keyfile(
        client_key, username="root", known_hosts=known_hosts
    )
    if ssh:  # the seed's login with faster keepalives (the cut-link tests)
        auth = dataclasses.replace(auth.ssh_options(), **ssh)

    # Define a maintenance workflow
    workflow = muster.MaintenanceWorkflow("os_patching")

    # Add tasks
    workflow.add_task(
        "backup",
        f"{_ME}; cp {state}/pkgs-$ip {state}/backup-$ip && {_log(state, 'backup')}",
        targets=["*"],
        rollback=f"{_ME}; {_log(state, 'undo-backup')}",
    )
    workflow.add_task("update_repos", "echo repos updated", targets=["*"])
    workflow.add_task(
        "upgrade_packages",
        f"{_ME}; [ -f {state}/hang-$ip ] && touch {state}/started-$ip; "
        f"i=0; while [ -f {state}/hang-$ip ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; "
        f"v=3.0.13-1; [ -f {state}/broken-$ip ] && v=3.0.2-1; "
        f"printf 'ii  openssl %s\\nii  bash 5.2-1\\n' $v > {state}/pkgs-$ip; "
        f"{_log(state, 'upgrade')}",
        targets=["*"],
        depends_on=["update_repos"],
        rollback=f"{_ME}; printf '{_OLD}' > {state}/pkgs-$ip; {_log(state, 'undo-upgrade')}",
    )
    workflow.add_task(
        "restart_services",
        f"{_ME}; {_log(state, 'restart')}",
        targets=["web_servers"],
        depends_on=["upgrade_packages"],
    )
    workflow.add_task(
        "verify_web",
        "echo OK | grep -q 'OK'",
        targets=["web_servers"],
        depends_on=["restart_services"],
    )

    # Configure progressive execution
    workflow.set_progressive_execution(
        {
            "groups": [
                [WEB[0]],  # Canary server
                list(WEB[1:]),  # Rest of web servers
                ["db_servers"],  # Database servers
                ["cache_servers"],  # Cache servers
            ],
            "verification_tasks": ["verify_web"],
            "auto_rollback": True,
            **(rollout or {}),
        }
    )

    # Define configuration verification
    workflow.add_verification(
        "verify_package_versions",
        {
            "before_tasks": ["backup"],
            "after_tasks": ["upgrade_packages"],
            "commands": {"package_versions": f"{_ME}; grep -E 'openssl|bash' {state}/pkgs-$ip"},
            "comparisons": {
                "package_versions": {
                    "type": "regex_match",
                    "pattern": r"ii\s+openssl\s+(\S+)",
                    "expected_change": "version_increase",
                }
            },
        },
    )

    # Set maintenance window
    workflow.set_maintenance_window(
        {
            "web_servers": _window_around_now(),
            "db_servers": _window_around_now(),
            "cache_servers": _window_around_now(),
        }
    )

    # Configure parallel execution
    workflow.set_parallelization(
        {"max_parallel_servers": 10, "max_parallel_per_group": 5, "delay_between_servers": "2s"}
    )

    # Execute workflow
    engine = muster.Engine(inventory, auth)
    return engine, workflow


def read_log(state: Path, addresses: Mapping[str, str]) -> list[tuple[str, str, int]]:
    """The shared log as (host name, what, ns), in time order."""
    by_addr = {a: n for n, a in addresses.items()}
    path = state / "log"
    rows = []
    for line in path.read_text().splitlines() if path.exists() else []:
        addr, what, ns = line.split()
        rows.append((by_addr[addr], what, int(ns)))
    return sorted(rows, key=lambda r: r[2])
