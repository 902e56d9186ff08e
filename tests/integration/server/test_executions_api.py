"""Executions over real HTTP: run on localhost and simulated SSH hosts, cancel, retry, delete."""

from __future__ import annotations

import httpx

from muster.testing.simfleet import SimFleet
from tests.integration.server.conftest import register_fleet
from tests.integration.server.harness import LiveServer, wait_for
from tests.integration.server.helpers import save_script, wait_terminal

EXEC = "/api/v1/automation/executions"


def execute(api: httpx.Client, script_id: str, hosts: list[str], **values: object) -> dict:
    resp = api.post(
        f"/api/v1/automation/scripts/{script_id}/execute",
        json={"host_ids": hosts, "parameter_values": values},
    )
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def test_script_runs_on_localhost_and_ssh_hosts(api: httpx.Client, fleet: SimFleet) -> None:
    names = register_fleet(api, fleet)
    script = save_script(
        api,
        name="greet",
        body='echo "hello ${who} from ${MUSTER_SIM_HOST:-local}"\necho warn >&2\n',
        parameters=[{"name": "who", "required": True}],
    )
    started = execute(api, script["id"], ["localhost", *names[:3]], who="it's me; rm -rf /")
    assert started["status"] in ("queued", "running")
    assert started["content_hash"] == script["content_hash"]
    assert len(started["hosts"]) == 4
    done = wait_terminal(api, started["id"])
    assert done["status"] == "succeeded", done
    by_host = {h["host"]: h for h in done["hosts"]}
    assert by_host["localhost"]["stdout_tail"] == "hello it's me; rm -rf / from local\n"
    assert by_host[names[0]]["stdout_tail"] == f"hello it's me; rm -rf / from {names[0]}\n"
    for h in done["hosts"]:
        assert h["exit_code"] == 0 and h["stderr_tail"] == "warn\n"
        assert h["started_at"] and h["finished_at"] and h["duration"] is not None
        assert h["attempt"] == 1
    log = api.get(f"{EXEC}/{started['id']}/hosts/{names[1]}/log", params={"stream": "stdout"})
    assert log.status_code == 200
    assert log.text == f"hello it's me; rm -rf / from {names[1]}\n"
    listed = api.get(EXEC, params={"script_id": script["id"], "status": "succeeded"}).json()
    assert [e["id"] for e in listed["items"]] == [started["id"]]
    assert api.get(EXEC, params={"host": names[2]}).json()["total"] == 1
    assert api.get(EXEC, params={"host": names[4]}).json()["total"] == 0
    created = started["created_at"]
    assert api.get(EXEC, params={"since": created}).json()["total"] == 1
    assert api.get(EXEC, params={"until": "2000-01-01T00:00:00Z"}).json()["total"] == 0
    assert api.get(EXEC, params={"since": "2000-01-01T00:00:00"}).status_code == 422
    page = api.get(EXEC, params={"limit": 1, "offset": 1}).json()
    assert page["items"] == [] and page["limit"] == 1 and page["offset"] == 1


def test_hosts_without_the_shell_are_skipped(api: httpx.Client) -> None:
    api.post("/api/v1/hosts", json={"name": "winbox", "platform": "windows", "address": "w"})
    api.post("/api/v1/hosts", json={"name": "tiny", "shells": ["sh"], "address": "t"})
    script = save_script(api, name="z", shell="zsh", body="echo z\n")
    started = execute(api, script["id"], ["winbox", "tiny"])
    assert {s["host"] for s in started["skipped_hosts"]} == {"winbox", "tiny"}
    assert all("zsh" in s["reason"] for s in started["skipped_hosts"])
    assert started["status"] == "skipped"


def test_failed_host_retry_and_delete_rules(api: httpx.Client, tmp_path) -> None:
    flag = tmp_path / "ok"
    script = save_script(
        api, name="flaky", body=f"test -e {flag} && echo fine || {{ echo nope >&2; exit 3; }}\n"
    )
    first = wait_terminal(api, execute(api, script["id"], ["localhost"])["id"])
    assert first["status"] == "failed"
    host = first["hosts"][0]
    assert host["exit_code"] == 3 and host["reason"] == "command_failed"
    flag.write_text("")
    retried = api.post(f"{EXEC}/{first['id']}/retry")
    assert retried.status_code == 200, retried.text
    done = wait_terminal(api, first["id"])
    assert done["status"] == "succeeded", done
    attempts = sorted(h["attempt"] for h in done["hosts"])
    assert attempts[-1] == 2
    again = api.post(f"{EXEC}/{first['id']}/retry")
    assert again.status_code == 409, again.text
    assert api.post(f"{EXEC}/{first['id']}/cancel").status_code == 409
    assert api.delete(f"{EXEC}/{first['id']}").status_code == 204
    assert api.get(f"{EXEC}/{first['id']}").status_code == 404


def test_cancel_running_then_delete(server: LiveServer, api: httpx.Client) -> None:
    script = save_script(api, name="sleepy", body="echo started\nsleep 60\necho never\n")
    started = execute(api, script["id"], ["localhost"])
    eid = started["id"]

    def running() -> bool:
        data = api.get(f"{EXEC}/{eid}").json()
        return (
            data["hosts"][0]["state"] == "running" and "started" in data["hosts"][0]["stdout_tail"]
        )

    wait_for(running, timeout=30, what="the run to start")
    assert api.delete(f"{EXEC}/{eid}").status_code == 409
    cancelled = api.post(f"{EXEC}/{eid}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    done = wait_terminal(api, eid, timeout=30)
    assert done["status"] == "cancelled"
    assert "never" not in done["hosts"][0]["stdout_tail"]
    assert api.delete(f"{EXEC}/{eid}").status_code == 204


def test_a_host_deleted_while_queued_fails_as_host_deleted(
    api: httpx.Client, fleet: SimFleet
) -> None:
    names = register_fleet(api, fleet)
    script = save_script(api, name="orphan", body="echo ran\n")
    assert api.post("/api/v1/workers/drain").status_code == 200
    try:
        started = execute(api, script["id"], names[:2])
        host_id = api.get(f"/api/v1/hosts/{names[0]}").json()["id"]
        assert api.delete(f"/api/v1/hosts/{host_id}").status_code == 204
    finally:
        assert api.post("/api/v1/workers/resume").status_code == 200
    done = wait_terminal(api, started["id"])
    by_host = {h["host"]: h for h in done["hosts"]}
    gone = by_host[names[0]]
    assert (gone["state"], gone["reason"], gone["started_at"]) == ("failed", "host_deleted", None)
    assert names[0] in gone["message"] and "deleted" in gone["message"]
    assert by_host[names[1]]["state"] == "succeeded"
    assert by_host[names[1]]["stdout_tail"] == "ran\n"


def test_command_and_job_types(api: httpx.Client, fleet: SimFleet) -> None:
    names = register_fleet(api, fleet)
    cmd = api.post(
        "/api/v1/automation/commands",
        json={"command": "echo $((6*7))", "host_ids": [names[0], "localhost"], "timeout": 30},
    )
    assert cmd.status_code == 201, cmd.text
    done = wait_terminal(api, cmd.json()["id"])
    assert done["status"] == "succeeded"
    assert {h["stdout_tail"] for h in done["hosts"]} == {"42\n"}
    job = api.post(
        "/api/v1/automation/jobs",
        json={
            "type": "network_diagnostic",
            "tool": "port_check",
            "target": fleet.addresses[0],
            "port": fleet.port,
            "host_ids": ["localhost"],
        },
    )
    assert job.status_code == 201, job.text
    assert job.json()["priority"] == "high"
    finished = wait_terminal(api, job.json()["id"])
    assert finished["status"] == "succeeded", finished
    svc = api.post(
        "/api/v1/automation/jobs",
        json={
            "type": "service_control",
            "action": "status",
            "service": "nonexistent-muster",
            "host_ids": ["localhost"],
        },
    )
    assert svc.status_code == 201 and svc.json()["priority"] == "critical"
    assert wait_terminal(api, svc.json()["id"])["status"] == "failed"


def test_host_ids_accept_groups_and_globs(api: httpx.Client, fleet: SimFleet) -> None:
    names = register_fleet(api, fleet)
    web = [h.name for h in fleet.hosts() if "web" in h.groups]
    script = save_script(api, name="sel", body="echo sel\n")
    by_group = execute(api, script["id"], ["web"])
    assert sorted(h["host"] for h in by_group["hosts"]) == sorted(web)
    by_glob = execute(api, script["id"], ["sim000*", names[0]])
    assert sorted(h["host"] for h in by_glob["hosts"]) == sorted(names)
    nothing = api.post(
        f"/api/v1/automation/scripts/{script['id']}/execute", json={"host_ids": ["nomatch*"]}
    )
    assert nothing.status_code == 422 and nothing.json()["detail"][0]["field"] == "host_ids"
    assert wait_terminal(api, by_group["id"])["status"] == "succeeded"
    assert wait_terminal(api, by_glob["id"])["status"] == "succeeded"
