"""Small helpers shared by the server tests: row counts, polling an execution."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from muster.store.tables import (
    executions,
    host_runs,
    hosts,
    output_chunks,
    script_versions,
    scripts,
)
from tests.integration.server.harness import LiveServer, wait_for

__all__ = ["row_counts", "save_script", "wait_terminal"]

TERMINAL = {"succeeded", "failed", "timed_out", "cancelled", "rejected", "skipped"}


def row_counts(server: LiveServer) -> dict[str, int]:
    """Rows per table, read straight from the database the server uses."""
    engine = server.ctx.store.engine
    with engine.connect() as conn:
        return {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (scripts, script_versions, hosts, executions, host_runs, output_chunks)
        }


def save_script(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {"shell": "bash", "timeout": 60, **fields}
    resp = api.post("/api/v1/automation/scripts", json=body)
    assert resp.status_code in (200, 201), resp.text
    return dict(resp.json())


def wait_terminal(api: httpx.Client, execution_id: str, timeout: float = 60) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        data = api.get(f"/api/v1/automation/executions/{execution_id}").json()
        return data if data["status"] in TERMINAL else None

    return dict(wait_for(done, timeout=timeout, interval=0.1, what=f"execution {execution_id}"))
