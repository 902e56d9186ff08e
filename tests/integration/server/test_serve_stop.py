"""``muster serve`` stops on SIGTERM without waiting on open live-output streams.

A stream follows an execution that waits for approval, so it could stay open
for ever. SIGTERM must end it at once with a ``server_stopping`` event (not by
the graceful-shutdown timeout cutting the connection), and the process must
exit 0: a requested stop is a normal end. This is the uvicorn runner in
:mod:`muster.server.serving`, seen from outside the process.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from muster.config import Settings
from tests.integration.server.harness import admin_token_for, free_port, wait_for

MUSTER = str(Path(sys.executable).parent / "muster")
_A = "/api/v1/automation"


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], httpx.Client, Path]]:
    port = free_port()
    data_dir = tmp_path / "data"
    env = {**os.environ, "MUSTER_DATA_DIR": str(data_dir), "MUSTER_DATABASE_URL": ""}
    log = tmp_path / "serve.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [MUSTER, "serve", "--port", str(port), "--log-level", "warning"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert proc.poll() is None, log.read_text()
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        return False

    try:
        wait_for(healthy, timeout=60, interval=0.1, what="muster serve to answer /health")
        token = admin_token_for(Settings(data_dir=data_dir))  # type: ignore[call-arg]
        with httpx.Client(
            base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"}
        ) as api:
            yield proc, api, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _pending_execution(api: httpx.Client) -> str:
    """An execution that waits for approval on an SSH host nobody contacts."""
    host = api.post("/api/v1/hosts", json={"name": "far", "address": "192.0.2.10"})
    assert host.status_code == 201, host.text
    script = api.post(
        f"{_A}/scripts",
        json={"name": "gated", "shell": "sh", "body": "true\n", "requires_approval": True},
    )
    assert script.status_code in (200, 201), script.text
    started = api.post(f"{_A}/scripts/{script.json()['id']}/execute", json={"host_ids": ["far"]})
    assert started.status_code == 201, started.text
    assert started.json()["status"] == "pending_approval"
    return str(started.json()["id"])


def test_sigterm_ends_open_streams_at_once_and_exits_0(
    serve: tuple[subprocess.Popen[bytes], httpx.Client, Path],
) -> None:
    proc, api, log = serve
    execution_id = _pending_execution(api)
    lines: list[str] = []
    opened = threading.Event()
    failure: list[BaseException] = []

    def follow() -> None:
        try:
            with api.stream("GET", f"{_A}/executions/{execution_id}/stream") as resp:
                assert resp.status_code == 200
                for line in resp.iter_lines():
                    lines.append(line)
                    opened.set()
        except BaseException as exc:  # reported below, not lost in the thread
            failure.append(exc)
            opened.set()

    reader = threading.Thread(target=follow, name="stream-reader")
    reader.start()
    assert opened.wait(30), "the stream sent nothing"
    assert not failure, failure

    proc.send_signal(signal.SIGTERM)
    reader.join(60)
    assert not reader.is_alive(), "the stream stayed open after SIGTERM"
    assert proc.wait(60) == 0, log.read_text()
    assert not failure, failure

    ends = [
        json.loads(data.removeprefix("data:").strip())
        for event, data in itertools.pairwise(lines)
        if event.strip() == "event: end" and data.startswith("data:")
    ]
    assert ends == [{"status": "server_stopping"}], lines
