"""schemathesis against the OpenAPI document of a running, authenticated server: no 5xx.

Bounded: at most 25 examples per operation, no stateful phase. Excluded on
purpose, because generated input there would run generated shell code as
root on this machine or reach out of it: executing scripts, commands and
jobs, retrying executions, creating or changing schedules (they fire on their
own) and running one now, and creating webhooks (random URLs). Everything
else, host import, identity, approvals, audit, credentials, hosts,
scripts and reads included, is exercised as the test admin.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.integration.server.harness import LiveServer

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
EXCLUDED = [
    ("POST", "/api/v1/automation/scripts/{script_id}/execute"),
    ("POST", "/api/v1/automation/commands"),
    ("POST", "/api/v1/automation/jobs"),
    ("POST", "/api/v1/automation/executions/{execution_id}/retry"),
    ("POST", "/api/v1/webhooks"),
    # a schedule created or changed here would fire generated commands on its own
    ("POST", "/api/v1/automation/schedules"),
    ("PUT", "/api/v1/automation/schedules/{schedule_id}"),
    ("POST", "/api/v1/automation/schedules/{schedule_id}/run-now"),
]


def test_no_server_errors_under_generated_requests(server: LiveServer, tmp_path: Path) -> None:
    excludes = []
    for method, path in EXCLUDED:
        excludes += ["--exclude-name", f"{method} {path}"]
    cmd = [
        SCHEMATHESIS,
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        "25",
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        "20261126",
        "--request-timeout",
        "30",
        "-H",
        f"Authorization: Bearer {server.admin_token}",
        *excludes,
    ]
    done = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )
    (tmp_path / "report.txt").write_text(done.stdout + done.stderr)
    report = done.stdout[-6000:] + done.stderr[-2000:]
    assert done.returncode == 0, report
    found = re.search(r"Selected: (\d+)/(\d+)", report)
    assert found, report
    assert int(found.group(2)) - int(found.group(1)) == len(EXCLUDED), report
    # The requests were authenticated: the fuzzer's changes are in the audit log as the admin.
    with server.client() as api:
        audit = api.get("/api/v1/audit", params={"user": "test-admin", "limit": 1}).json()
    assert audit["total"] > 50, audit
