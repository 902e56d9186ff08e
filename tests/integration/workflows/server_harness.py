"""The server face of the shared workflow tests: a real ``muster`` server (uvicorn,
SQLite, its embedded worker and the durable workflow driver), driven over its
HTTP API only.

Hosts ``h1`` (group web) and ``h2`` (group db) are local-transport hosts the
admin registers (the server's own machine, so they see the tests' files);
the instance is started by ``tester``; ``alice`` and ``bob`` vote with their
own tokens (role approver), through the same approvals endpoints as any
execution approval.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from muster.app import SshOptions, default_transports
from muster.domain.workflows import HostOutcome
from muster.server.embedded import embedded_worker_factory
from tests.integration.server.harness import LiveServer, server_settings
from tests.integration.workflows.conftest import GROUPS, HOSTS, RunView

__all__ = ["ServerHarness", "stop_shared_workflow_server"]

WF = "/api/v1/automation/workflows"
INST = "/api/v1/automation/workflow-instances"
TERMINAL = {"succeeded", "failed", "killed"}


def _shells() -> list[str]:
    found = [s for s in ("bash", "sh", "zsh", "ksh") if shutil.which(s)]
    return [*found, "python"] if shutil.which("python3") else found


def run_view(data: Mapping[str, Any]) -> RunView:
    """A RunView from the API's instance document."""
    outcomes: dict[str, dict[str, HostOutcome]] = {}
    for step in data["steps"]:
        if step.get("result_attempt") is None:
            continue
        outcomes[step["id"]] = {
            h["host"]: HostOutcome(
                host=h["host"],
                state=h["state"],
                exit_code=h.get("exit_code"),
                stdout=h.get("stdout", ""),
                stderr=h.get("stderr", ""),
                json=h.get("json") or {},
                message=h.get("message", ""),
                duration=h.get("duration"),
            )
            for h in step["hosts"]
        }
    return RunView(
        id=data["id"],
        status=data["status"],
        steps={s["id"]: s["state"] for s in data["steps"]},
        messages={s["id"]: s["message"] for s in data["steps"]},
        outcomes=outcomes,
        attempts={s["id"]: s["attempt"] for s in data["steps"]},
    )


class _Shared:
    """One server for every test of the session (starting one costs seconds; each test
    starts its own instances, so they do not see each other's)."""

    server: LiveServer | None = None
    tokens: dict[str, str] = {}
    data: Path | None = None

    @classmethod
    def get(cls) -> tuple[LiveServer, dict[str, str]]:
        if cls.server is None:
            cls.data = Path(tempfile.mkdtemp(prefix="muster-wf-server-"))
            server = LiveServer(
                server_settings(cls.data / "data"),
                worker_factory=embedded_worker_factory(default_transports(SshOptions())),
            ).start()
            driver = server.ctx.workflow_driver
            driver.interval = 0.05
            driver.poll = dt.timedelta(seconds=0.05)
            tokens = {}
            for user, roles in (
                ("tester", ["admin"]),
                ("alice", ["approver"]),
                ("bob", ["approver"]),
            ):
                tokens[user] = server.issue_token(user, roles)
            with httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {tokens['tester']}"}
            ) as api:
                for name in HOSTS:
                    resp = api.post(
                        "/api/v1/hosts",
                        json={
                            "name": name,
                            "transport": "local",
                            "groups": [GROUPS[name]],
                            "shells": _shells(),
                        },
                    )
                    assert resp.status_code == 201, resp.text
            cls.server, cls.tokens = server, tokens
        return cls.server, cls.tokens

    @classmethod
    def stop(cls) -> None:
        if cls.server is not None:
            cls.server.stop()
            cls.server = None
        if cls.data is not None:
            shutil.rmtree(cls.data, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def stop_shared_workflow_server() -> Iterator[None]:
    """Stops the shared server when the session ends (if a test started it)."""
    yield
    _Shared.stop()


class ServerHarness:
    hosts = HOSTS

    def __init__(self) -> None:
        self.server: LiveServer | None = None
        self.tokens: dict[str, str] = {}

    async def open(self) -> None:
        self.server, self.tokens = await asyncio.to_thread(_Shared.get)

    def _client(self, user: str) -> httpx.AsyncClient:
        assert self.server is not None
        return httpx.AsyncClient(
            base_url=self.server.url,
            timeout=30,
            headers={"Authorization": f"Bearer {self.tokens[user]}"},
        )

    async def _call(self, method: str, path: str, user: str = "tester", **kw: Any) -> Any:
        async with self._client(user) as api:
            resp = await api.request(method, path, **kw)
        if resp.status_code >= 400:
            raise AssertionError(f"{method} {path}: {resp.status_code} {resp.text}")
        return resp.json() if resp.content else None

    async def start(self, definition: str, params: Mapping[str, Any] | None = None) -> str:
        pushed = await self._call("POST", WF, json={"source": definition})
        started = await self._call(
            "POST",
            f"{WF}/{pushed['name']}/start",
            json={"parameters": dict(params or {}), "targets": "*"},
        )
        return str(started["id"])

    async def view(self, instance_id: str) -> RunView:
        return run_view(await self._call("GET", f"{INST}/{instance_id}"))

    async def _until(self, instance_id: str, check: Any, timeout: float, what: str) -> RunView:
        deadline = time.monotonic() + timeout
        while True:
            data = await self._call("GET", f"{INST}/{instance_id}")
            if check(data):
                return run_view(data)
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {data}")
            await asyncio.sleep(0.05)

    async def wait(self, instance_id: str, timeout: float = 60) -> RunView:
        return await self._until(
            instance_id, lambda d: d["status"] in TERMINAL, timeout, "the instance to end"
        )

    async def run(
        self, definition: str, params: Mapping[str, Any] | None = None, timeout: float = 60
    ) -> RunView:
        return await self.wait(await self.start(definition, params), timeout)

    async def wait_step(
        self, instance_id: str, step: str, statuses: set[str], timeout: float = 30
    ) -> RunView:
        def ok(d: Mapping[str, Any]) -> bool:
            return any(s["id"] == step and s["state"] in statuses for s in d["steps"])

        return await self._until(instance_id, ok, timeout, f"step {step} in {statuses}")

    async def _act(self, instance_id: str, action: str, step: str | None, **query: str) -> None:
        path = f"{INST}/{instance_id}" + (f"/steps/{step}" if step else "")
        await self._call("PUT", path, params={"action": action, **query})

    async def pause(
        self, instance_id: str, step: str | None = None, seconds: float | None = None
    ) -> None:
        extra = {"duration": f"{seconds}s"} if seconds is not None else {}
        await self._act(instance_id, "pause", step, **extra)

    async def resume(self, instance_id: str, step: str | None = None) -> None:
        await self._act(instance_id, "resume", step)

    async def kill(self, instance_id: str, step: str | None = None) -> None:
        await self._act(instance_id, "kill", step)

    async def retry(self, instance_id: str, step: str) -> None:
        await self._act(instance_id, "retry", step)

    async def resume_failed(self, instance_id: str) -> None:
        await self._act(instance_id, "retry", None)

    async def _vote(self, instance_id: str, step: str, user: str, decision: str) -> None:
        deadline = time.monotonic() + 30
        while True:
            data = await self._call("GET", f"{INST}/{instance_id}/steps/{step}")
            if data.get("approval_id"):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"step {step} opened no approval request: {data}")
            await asyncio.sleep(0.05)
        await self._call(
            "POST", f"/api/v1/automation/approvals/{data['approval_id']}/{decision}", user=user
        )

    async def approve(self, instance_id: str, step: str, user: str) -> None:
        await self._vote(instance_id, step, user, "approve")

    async def reject(self, instance_id: str, step: str, user: str) -> None:
        await self._vote(instance_id, step, user, "reject")

    async def close(self) -> None:
        """The shared server stays up for the next test (stopped at exit)."""
