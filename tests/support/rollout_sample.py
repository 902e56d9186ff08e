"""A real rollout result for report tests: the in-process engine on local hosts.

Four local hosts in three waves (h1 | h2, h3 | h4). The upgrade writes a new
package version into each host's state file; on h3 it writes an older one, so
the verification fails there, the gate after wave 2 stops the rollout and
auto-rollback runs on h1-h3. h1's rollback of ``backup`` fails, so h1 is
flagged. h2 and h3 also change a captured key no check covers (``motd``):
unexpected drift. The secret parameter ``token`` is echoed by the upgrade and
captured, so the report has a secret to mask.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from muster.app import SshOptions, default_transports
from muster.domain.hosts import Host, TransportKind
from muster.domain.inventory import Inventory
from muster.domain.workflows import parse_workflow
from muster.engine.rollout import RolloutEngine
from muster.engine.rollout_report import report_document
from muster.engine.rollout_result import RolloutRun
from muster.testing import InMemoryStore

__all__ = ["SECRET", "run_sample", "sample_report"]

#: The secret parameter's value: it must never appear in a stored report.
SECRET = "s3cr3t-rollout-token-4471"
_HOST = 'h="${MUSTER_RUN_ID##*_}"'


def _definition(state: Path) -> dict[str, Any]:
    f = f"{state}/pkgs-$h"
    motd = f"{state}/motd-$h"
    return {
        "name": "patch_openssl",
        "targets": "*",
        "parameters": [{"name": "token", "type": "secret"}],
        "steps": [
            {
                "id": "backup",
                "command": f"{_HOST}; cp {f} {state}/backup-$h",
                "rollback": f'{_HOST}; [ "$h" != h1 ]',
            },
            {
                "id": "upgrade",
                "command": (
                    f"{_HOST}; v=3.0.13-1; [ $h = h3 ] && v=3.0.2-1; "
                    f"printf 'ii  openssl %s\\n' $v > {f}; "
                    f'case $h in h2|h3) echo "token $MUSTER_PARAM_TOKEN" > {motd};; esac'
                ),
                "depends_on": ["backup"],
                "rollback": f"{_HOST}; cp {state}/backup-$h {f}",
            },
        ],
        "rollout": {"waves": [["h1"], ["h2", "h3"], ["h4"]], "auto_rollback": True},
        "verifications": {
            "verify_packages": {
                "before_tasks": ["backup"],
                "after_tasks": ["upgrade"],
                "commands": {"openssl": f"{_HOST}; cat {f}", "motd": f"{_HOST}; cat {motd}"},
                "comparisons": {
                    "openssl": {
                        "type": "regex_match",
                        "pattern": r"ii\s+openssl\s+(\S+)",
                        "expected_change": "version_increase",
                    }
                },
            }
        },
    }


async def _run(state: Path) -> tuple[RolloutRun, dict[str, Any]]:
    state.mkdir(parents=True, exist_ok=True)
    inv = Inventory()
    for name in ("h1", "h2", "h3", "h4"):
        (state / f"pkgs-{name}").write_text("ii  openssl 3.0.11-1\n")
        (state / f"motd-{name}").write_text("welcome\n")
        inv.add_host(Host(name, transport=TransportKind.LOCAL))
    workflow = parse_workflow(_definition(state))
    engine = RolloutEngine(
        default_transports(SshOptions(connect_timeout=5)), inv, store=InMemoryStore()
    )
    params = {"token": SECRET}
    try:
        run = await engine.run(workflow, params=params)
    finally:
        await engine.close()
    return run, report_document(run, workflow=workflow, params=params)


def run_sample(state: Path) -> tuple[RolloutRun, dict[str, Any]]:
    """Run the sample rollout under ``state``: (the result, its report document).

    In a thread of its own, so a caller already inside an event loop (Playwright's
    sync API keeps one) can use it too."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _run(state)).result()


def sample_report(state: Path) -> dict[str, Any]:
    return run_sample(state)[1]
