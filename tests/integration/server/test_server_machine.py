"""The server's own machine is a capability of its own (issue 9, Critical).

A host on the local transport runs on the server. Only a caller holding
``hosts.local`` (built in only for ``admin``) may create one, turn a host
into one, import one, change or delete one, or target one, directly or
through a selector such as ``*``; everyone else gets a 403 naming the hosts,
and nothing is stored. The harness's ``localhost`` stands for a local host an
admin created.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from muster.testing.simfleet import SimFleet
from tests.integration.server.conftest import register_fleet
from tests.integration.server.harness import LiveServer, server_settings
from tests.integration.server.helpers import row_counts, save_script, wait_terminal

LOCAL_INI = "[web]\nbox1 ansible_host=10.9.0.1\nsrv ansible_connection=local\n"


@pytest.fixture
def operator(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client(token=server.issue_token("olga", ["operator"])) as client:
        yield client


def _refused(resp: httpx.Response, *hosts: str) -> None:
    assert resp.status_code == 403, resp.text
    detail = resp.text
    assert "hosts.local" in detail, detail
    for name in hosts:
        assert name in detail, detail


def test_operator_cannot_create_or_turn_a_host_local(
    server: LiveServer, api: httpx.Client, operator: httpx.Client
) -> None:
    assert operator.post("/api/v1/hosts", json={"name": "plain"}).status_code == 201
    before = row_counts(server)
    _refused(operator.post("/api/v1/hosts", json={"name": "srv", "transport": "local"}), "srv")
    for method in ("put", "patch"):
        resp = getattr(operator, method)("/api/v1/hosts/plain", json={"transport": "local"})
        _refused(resp, "plain")
    # the admin's local host cannot be changed, renamed or deleted by an operator
    _refused(operator.patch("/api/v1/hosts/localhost", json={"labels": {"x": "y"}}), "localhost")
    _refused(operator.patch("/api/v1/hosts/localhost", json={"transport": "ssh"}), "localhost")
    _refused(operator.delete("/api/v1/hosts/localhost"), "localhost")
    # an inventory with one local host is refused whole
    _refused(operator.post("/api/v1/hosts/import", json={"content": LOCAL_INI}), "srv")
    # importing over the admin's local host by name is changing it
    over = "[x]\nlocalhost ansible_host=10.9.0.9\n"
    _refused(operator.post("/api/v1/hosts/import", json={"content": over}), "localhost")
    assert row_counts(server) == before
    assert api.get("/api/v1/hosts/plain").json()["transport"] == "ssh"
    local = api.get("/api/v1/hosts/localhost").json()
    assert local["transport"] == "local" and local["labels"] == {"role": "server"}

    # the admin may do all of it
    assert api.post("/api/v1/hosts", json={"name": "srv", "transport": "local"}).status_code == 201
    assert api.patch("/api/v1/hosts/plain", json={"transport": "local"}).status_code == 200
    imported = api.post("/api/v1/hosts/import", json={"content": LOCAL_INI})
    assert imported.status_code == 201, imported.text
    assert api.get("/api/v1/hosts/srv").json()["transport"] == "local"
    assert api.delete("/api/v1/hosts/plain").status_code == 204


def _targets(server: LiveServer, fleet: SimFleet, api: httpx.Client) -> tuple[list[str], str]:
    names = register_fleet(api, fleet)
    script = save_script(api, name="hello", body="echo hello\n")
    return names, str(script["id"])


def test_operator_cannot_target_a_local_host_directly_or_by_selector(
    server: LiveServer, api: httpx.Client, operator: httpx.Client, fleet: SimFleet
) -> None:
    names, script_id = _targets(server, fleet, api)
    before = row_counts(server)
    execute = f"/api/v1/automation/scripts/{script_id}/execute"
    for refs in (["localhost"], ["*"], ["all"], [names[0], "local*"], ["role=server"]):
        _refused(operator.post(execute, json={"host_ids": refs}), "localhost")
    command = {"command": "id", "host_ids": ["*"], "timeout": 30}
    _refused(operator.post("/api/v1/automation/commands", json=command), "localhost")
    job = {"type": "command", "command": "id", "host_ids": ["localhost"]}
    _refused(operator.post("/api/v1/automation/jobs", json=job), "localhost")
    ping = {"type": "service_control", "action": "status", "service": "x", "host_ids": ["*"]}
    _refused(operator.post("/api/v1/automation/jobs", json=ping), "localhost")
    assert row_counts(server) == before

    # the SSH hosts alone are fine for the operator; the admin may target everything
    ok = operator.post(execute, json={"host_ids": names[:2]})
    assert ok.status_code == 201, ok.text
    everything = api.post(execute, json={"host_ids": ["*"]})
    assert everything.status_code == 201, everything.text
    done = wait_terminal(api, everything.json()["id"])
    assert {h["host"] for h in done["hosts"]} == {"localhost", *names}


def test_operator_cannot_retry_a_run_on_the_server(
    server: LiveServer, api: httpx.Client, operator: httpx.Client
) -> None:
    failing = save_script(api, name="fails", body="exit 3\n")
    started = api.post(
        f"/api/v1/automation/scripts/{failing['id']}/execute", json={"host_ids": ["localhost"]}
    )
    assert started.status_code == 201, started.text
    execution: dict[str, Any] = wait_terminal(api, started.json()["id"])
    assert execution["status"] == "failed"
    url = f"/api/v1/automation/executions/{execution['id']}/retry"
    _refused(operator.post(url), "localhost")
    _refused(operator.post(f"/executions/{execution['id']}/retry"), "localhost")
    unchanged = api.get(f"/api/v1/automation/executions/{execution['id']}").json()
    assert unchanged["status"] == "failed" and unchanged == execution
    assert api.post(url).status_code == 200


def test_console_execute_form_refuses_and_does_not_preselect_the_server(
    server: LiveServer, api: httpx.Client, operator: httpx.Client
) -> None:
    script = save_script(api, name="hello", body="echo hello\n")
    form = operator.get(f"/scripts/{script['id']}/execute")
    assert form.status_code == 200, form.text
    # the picker may suggest it, but nothing is pre-filled
    assert 'name="targets" value=""' in form.text
    before = row_counts(server)
    posted = operator.post(
        f"/scripts/{script['id']}/execute",
        data={"targets": "*", "version": str(script["version"])},
    )
    _refused(posted, "localhost")
    assert row_counts(server) == before


@pytest.fixture
def open_parent() -> Iterator[Path]:
    """A directory every account may enter, so only the data directory's own mode guards it."""
    path = Path(tempfile.mkdtemp(prefix="muster-open-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another account needs root")
def test_local_runs_on_a_server_are_another_account_without_the_data_directory(
    database_url: str, open_parent: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the server's own transports (as ``muster serve`` builds them from settings)."""
    monkeypatch.setenv("MUSTER_CANARY", "server-only")
    data = open_parent / "data"
    data.mkdir(mode=0o755)  # an existing, too open data directory is tightened
    data.chmod(0o755)
    live = LiveServer(server_settings(data, database_url)).start()
    try:
        assert data.stat().st_mode & 0o777 == 0o700
        with live.client() as api:
            assert api.get("/api/v1/hosts").json()["total"] == 0  # nothing local by default
            made = api.post("/api/v1/hosts", json={"name": "srv", "transport": "local"})
            assert made.status_code == 201, made.text
            probe = (
                'echo "user=$(id -un)"; echo "pwd=$(pwd)"; echo "home=$HOME"; env; '
                f"cat {data}/secret.key; ls {data}; echo end"
            )
            resp = api.post(
                "/api/v1/automation/commands",
                json={"command": probe, "host_ids": ["srv"], "timeout": 30},
            )
            assert resp.status_code == 201, resp.text
            run = wait_terminal(api, resp.json()["id"])["hosts"][0]
    finally:
        live.stop()
    out = run["stdout_tail"].splitlines()
    assert out[0] == "user=nobody", run
    workdir = out[1].removeprefix("pwd=")
    assert workdir.startswith(tempfile.gettempdir()) and "muster-run-" in workdir, run
    assert out[2] == f"home={workdir}" and not Path(workdir).exists()
    env = dict(line.split("=", 1) for line in out[3:] if "=" in line)
    assert sorted(k for k in env if k.startswith("MUSTER_")) == ["MUSTER_RUN_ID"], env
    assert out[-1] == "end"
    assert run["stderr_tail"].count("Permission denied") == 2, run
