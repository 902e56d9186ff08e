"""Progressive rollouts run durably by the server, over real OpenSSH sshd hosts, on
SQLite and PostgreSQL:

* all green in four waves, with the same waves, statuses, per-host results and
  evidence as ``muster.Engine(...).execute`` of the same definition on the same
  hosts, and the report published for the console's drift view;
* a verification failure on a wave-2 host stops the rollout; wave 2, then wave
  1, is rolled back (newest first), each host's rollback outcome stored;
* pause between waves holds the next wave until resume;
* abort stops it without any rollback;
* rollback on request of an aborted rollout.

Six hosts (web1-4, db1-2) on loopback addresses answered by one sshd; a command
learns its host from ``$SSH_CONNECTION`` and writes its state files and a shared
log (one line per step per host) under a directory of the test, so the test can
tell which host ran what, and how many times.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import muster
from muster.app import SshOptions, default_transports
from muster.config import Settings
from muster.domain.hosts import Host
from muster.server.embedded import embedded_worker_factory
from muster.store.sqlalchemy_store import open_store
from tests.fleet.sshd import SshdServer, free_port
from tests.integration.server.harness import (
    LiveServer,
    fresh_postgres,
    issue_token,
    pg_base_url,
    server_settings,
    wait_for,
)
from tests.integration.workflows.test_workflow_server_ssh import Serve
from tests.integration.workflows.test_workflow_server_ssh import _instance as instance
from tests.integration.workflows.test_workflow_server_ssh import _register as register

pytestmark = pytest.mark.timeout(240)

WF = "/api/v1/automation/workflows"
INST = "/api/v1/automation/workflow-instances"
NAMES = ("web1", "web2", "web3", "web4", "db1", "db2")
ENDED = {"succeeded", "failed", "killed"}

ROLLOUT = """
name: {name}
parameters:
  - {{name: state, type: string}}
  - {{name: nap, type: string, default: "0"}}
steps:
  - id: upgrade
    targets: ["*"]
    command: >-
      set -- $SSH_CONNECTION; ip=$3; echo "$ip upgrade" >> {{{{params.state}}}}/log;
      n=$(cat {{{{params.state}}}}/v-$ip 2>/dev/null || echo 10);
      if [ -f {{{{params.state}}}}/broken-$ip ]; then n=$((n-1)); else n=$((n+1)); fi;
      echo $n > {{{{params.state}}}}/v-$ip; sleep {{{{params.nap}}}}; echo "upgraded $ip to $n"
    rollback: >-
      set -- $SSH_CONNECTION; ip=$3; echo "$ip rollback" >> {{{{params.state}}}}/log;
      echo 10 > {{{{params.state}}}}/v-$ip; echo "restored $ip"
  - id: health
    targets: ["*"]
    depends_on: [upgrade]
    command: echo healthy
rollout:
  waves: [1, 3, 5, "100%"]
  verification_tasks: [health]
  auto_rollback: {auto}
  soak: {soak}
verifications:
  version:
    before_tasks: [upgrade]
    after_tasks: [upgrade]
    commands:
      v: set -- $SSH_CONNECTION; cat {{{{params.state}}}}/v-$3 2>/dev/null || echo 10
    comparisons:
      v: {{type: regex_match, pattern: '(\\d+)', expected_change: version_increase}}
"""


def definition(name: str, *, auto: bool = True, soak: float = 0) -> str:
    return ROLLOUT.format(name=name, auto="true" if auto else "false", soak=soak)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SshdServer, list[Host]]]:
    port = free_port()
    addrs = [(f"127.0.16.{i}", port) for i in range(1, len(NAMES) + 1)]
    server = SshdServer(addrs, workdir=tmp_path_factory.mktemp("rollout-server-sshd")).start()
    hosts = [
        Host(
            name,
            address=addr,
            port=p,
            user="root",
            groups=("web" if name.startswith("web") else "db",),
            shells=("bash", "sh"),
        )
        for name, (addr, p) in zip(NAMES, addrs, strict=True)
    ]
    try:
        yield server, hosts
    finally:
        server.cleanup()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        yield ""
        return
    if pg_base_url() is None:
        pytest.skip("MUSTER_TEST_POSTGRES_URL is not set")
    with fresh_postgres() as url:
        yield url


@pytest.fixture
def api(
    database_url: str, tmp_path: Path, sshd: tuple[SshdServer, list[Host]]
) -> Iterator[httpx.Client]:
    server, hosts = sshd
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_lines())
    transports = default_transports(SshOptions(known_hosts=str(known)))
    live = LiveServer(
        server_settings(tmp_path / "data", database_url),
        worker_factory=embedded_worker_factory(transports),
    ).start()
    try:
        with live.client() as client:
            register(client, hosts, server.client_key)
            yield client
    finally:
        live.stop()


def start(api: httpx.Client, text: str, name: str, state: Path, nap: str = "0") -> str:
    pushed = api.post(WF, json={"source": text})
    assert pushed.status_code == 201, pushed.text
    started = api.post(f"{WF}/{name}/start", json={"parameters": {"state": str(state), "nap": nap}})
    assert started.status_code == 201, started.text
    assert started.json()["rollout"]["status"] == "running"
    return str(started.json()["id"])


def ended(api: httpx.Client, iid: str, timeout: float = 90) -> dict[str, Any]:
    return dict(
        wait_for(
            lambda: (d := instance(api, iid))["status"] in ENDED and d,
            timeout=timeout,
            interval=0.2,
            what="the rollout to end",
        )
    )


def log_of(state: Path, hosts: list[Host]) -> Counter[tuple[str, str]]:
    """(host, step) -> how many times it ran, from the shared log."""
    by_ip = {h.address: h.name for h in hosts}
    path = state / "log"
    lines = path.read_text().splitlines() if path.exists() else []
    return Counter((by_ip[ip], what) for ip, what in (ln.split() for ln in lines))


def waves_of(doc: dict[str, Any]) -> list[tuple[list[str], str]]:
    return [(w["hosts"], w["status"]) for w in doc["rollout"]["waves"]]


def test_all_green_in_four_waves_matches_in_process_and_publishes_the_report(
    api: httpx.Client, sshd: tuple[SshdServer, list[Host]], tmp_path: Path
) -> None:
    server, hosts = sshd
    local_state, remote_state = tmp_path / "local", tmp_path / "remote"
    local_state.mkdir()
    remote_state.mkdir()
    text = definition("green")
    known = tmp_path / "known_local"
    known.write_text(server.known_hosts_lines())
    auth = muster.SSHAuth.from_keyfile(server.client_key, username="root", known_hosts=known)
    # The server's inventory is its hosts in name order: the same order in-process.
    inventory = sorted(hosts, key=lambda h: h.name)
    local = muster.Engine(inventory, auth).execute(text, params={"state": str(local_state)})
    assert local.status == "succeeded"

    iid = start(api, text, "green", remote_state)
    doc = ended(api, iid)
    roll = doc["rollout"]
    assert doc["status"] == "succeeded" and roll["status"] == "succeeded", roll
    assert waves_of(doc) == [
        (["db1"], "succeeded"),
        (["db2", "web1"], "succeeded"),
        (["web2", "web3"], "succeeded"),
        (["web4"], "succeeded"),
    ]
    assert [w.hosts for w in local.waves] == [tuple(h) for h, _ in waves_of(doc)]
    assert all(w["gate"]["passed"] for w in roll["waves"])
    assert roll["flagged_hosts"] == [] and roll["rollback"] == {}
    assert log_of(remote_state, hosts) == log_of(local_state, hosts)
    assert set(log_of(remote_state, hosts).values()) == {1}  # no host ran a wave twice
    # Each host's evidence, as the in-process engine judged it.
    evidence = {h: e for w in roll["waves"] for h, e in w["evidence"]["version"].items()}
    assert sorted(evidence) == sorted(NAMES)
    assert all(e["passed"] for e in evidence.values())
    expected = {h: e.passed for h, e in local.verification_results["version"].items()}
    assert {h: e["passed"] for h, e in evidence.items()} == expected
    # One instance per host and wave, each on that host alone.
    part = instance(api, roll["waves"][1]["instances"]["web1"])
    assert part["rollout_of"] == {"instance_id": iid, "part": "wave", "hosts": ["web1"]}
    upgraded = next(s for s in part["steps"] if s["id"] == "upgrade")
    assert [h["host"] for h in upgraded["hosts"]] == ["web1"]
    # The report is published as `muster rollout publish` does: the console reads it.
    assert roll["reports"] == [roll["id"]]
    report = api.get(f"/api/v1/rollouts/{roll['id']}")
    assert report.status_code == 200, report.text
    body = report.json()
    document = body.get("document", body)
    assert document["status"] == "succeeded"
    assert sorted(document["hosts"]) == sorted(NAMES)
    page = api.get(f"/rollouts/{roll['id']}")
    assert page.status_code == 200 and "web3" in page.text


def test_throttle_delay_spaces_the_hosts_starts_inside_a_wave(
    api: httpx.Client, sshd: tuple[SshdServer, list[Host]], tmp_path: Path
) -> None:
    # The workflow's `delay` (seed 004's delay_between_servers) holds on the server
    # as in-process: no two hosts of the rollout start their part less than 1 s apart.
    state = tmp_path / "state"
    state.mkdir()
    text = (
        definition("spaced").replace('waves: [1, 3, 5, "100%"]', 'waves: [1, "100%"]')
        + "throttle: {delay: 1}\n"
    )
    iid = start(api, text, "spaced", state)
    doc = ended(api, iid)
    assert doc["status"] == "succeeded", doc["rollout"]
    starts = sorted(
        dt.datetime.fromisoformat(instance(api, kid)["created_at"])
        for wave in doc["rollout"]["waves"]
        for kid in wave["instances"].values()
    )
    assert len(starts) == len(NAMES)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.95, gaps


def test_verification_failure_in_wave_2_rolls_back_wave_2_then_wave_1(
    api: httpx.Client, sshd: tuple[SshdServer, list[Host]], tmp_path: Path
) -> None:
    _, hosts = sshd
    state = tmp_path / "state"
    state.mkdir()
    web1 = next(h for h in hosts if h.name == "web1")  # in wave 2 (hosts in name order)
    (state / f"broken-{web1.address}").touch()
    iid = start(api, definition("broken"), "broken", state)
    doc = ended(api, iid)
    roll = doc["rollout"]
    assert doc["status"] == "failed"
    assert roll["status"] == "rolled_back", [o["message"] for o in roll["rollback"].values()]
    assert "stopped at wave 2" in roll["message"] and "rolled back" in roll["message"]
    assert waves_of(doc) == [
        (["db1"], "rolled_back"),
        (["db2", "web1"], "rolled_back"),
        (["web2", "web3"], "not_run"),
        (["web4"], "not_run"),
    ]
    failed = roll["waves"][1]["failed_hosts"]
    assert list(failed) == ["web1"] and failed["web1"]["reason"] == "verification_failed"
    assert roll["waves"][1]["gate"]["passed"] is False
    assert roll["waves"][1]["evidence"]["version"]["web1"]["passed"] is False
    outcomes = roll["rollback"]
    assert {h: o["state"] for h, o in outcomes.items()} == {
        "db1": "rolled_back",
        "db2": "rolled_back",
        "web1": "rolled_back",
    }
    assert {h: o["wave"] for h, o in outcomes.items()} == {"db1": 0, "db2": 1, "web1": 1}
    assert outcomes["web1"]["steps"]["upgrade"]["stdout"].strip() == "restored 127.0.16.1"
    # Newest wave first: wave 2's hosts were rolled back before wave 1's.
    lines = (state / "log").read_text().splitlines()
    order = [ln.split()[0] for ln in lines if ln.endswith("rollback")]
    by_ip = {h.address: h.name for h in hosts}
    assert sorted(by_ip[ip] for ip in order[:2]) == ["db2", "web1"]
    assert [by_ip[ip] for ip in order[2:]] == ["db1"]
    ran = log_of(state, hosts)
    assert {h for h, what in ran if what == "upgrade"} == {"db1", "db2", "web1"}
    assert set(ran.values()) == {1}


def test_pause_between_waves_then_resume(
    api: httpx.Client, sshd: tuple[SshdServer, list[Host]], tmp_path: Path
) -> None:
    _, hosts = sshd
    state = tmp_path / "state"
    state.mkdir()
    iid = start(api, definition("pausing", soak=3), "pausing", state)
    wait_for(
        lambda: instance(api, iid)["rollout"]["waves"][0]["status"] == "soaking",
        timeout=60,
        interval=0.1,
        what="wave 1 to soak",
    )
    paused = api.put(f"{INST}/{iid}", params={"action": "pause"})
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    assert paused.json()["rollout"]["status"] == "paused"
    # Held past the soak's end: the soak's check and the next wave do not start while
    # the rollout is paused (watched over several of the driver's passes).
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        roll = instance(api, iid)["rollout"]
        assert [w["status"] for w in roll["waves"]] == ["soaking"] + ["pending"] * 3
        assert roll["waves"][0]["soak_instances"] == {}
        assert roll["waves"][1]["instances"] == {}
        time.sleep(0.5)
    assert api.put(f"{INST}/{iid}", params={"action": "resume"}).status_code == 200
    doc = ended(api, iid)
    roll = doc["rollout"]
    assert doc["status"] == "succeeded", roll
    # After each soak the verification task ran again on the wave (the last has none).
    assert [sorted(w["soak_instances"]) for w in roll["waves"]] == [
        ["db1"],
        ["db2", "web1"],
        ["web2", "web3"],
        [],
    ]
    assert set(log_of(state, hosts).values()) == {1} and len(log_of(state, hosts)) == 6


def test_abort_stops_without_rollback_then_rollback_on_request(
    api: httpx.Client, sshd: tuple[SshdServer, list[Host]], tmp_path: Path
) -> None:
    _, hosts = sshd
    state = tmp_path / "state"
    state.mkdir()
    iid = start(api, definition("aborting"), "aborting", state, nap="3")
    # Wave 2's hosts are inside their upgrade (it naps 3 s after writing the log).
    wait_for(
        lambda: {("db2", "upgrade"), ("web1", "upgrade")} <= set(log_of(state, hosts)),
        timeout=60,
        interval=0.1,
        what="wave 2's upgrade to start",
    )
    aborted = api.put(f"{INST}/{iid}", params={"action": "abort"})
    assert aborted.status_code == 200, aborted.text
    doc = ended(api, iid)
    roll = doc["rollout"]
    assert doc["status"] == "killed" and roll["status"] == "aborted", roll
    assert "nothing rolled back" in roll["message"]
    assert [w["status"] for w in roll["waves"]] == ["succeeded", "aborted", "not_run", "not_run"]
    assert roll["rollback"] == {}
    assert not any(what == "rollback" for _, what in log_of(state, hosts))
    assert api.put(f"{INST}/{iid}", params={"action": "pause"}).status_code == 409

    # Rolled back on request: wave 2 (its hosts were killed mid-step), then wave 1.
    asked = api.put(f"{INST}/{iid}", params={"action": "rollback"})
    assert asked.status_code == 200, asked.text
    doc = ended(api, iid)
    roll = doc["rollout"]
    assert roll["status"] == "rolled_back", [o["message"] for o in roll["rollback"].values()]
    assert set(roll["rollback"]) == {"db1", "db2", "web1"}
    assert roll["rollback"]["db1"]["state"] == "rolled_back"
    ran = log_of(state, hosts)
    assert {h for h, what in ran if what == "rollback"} == {"db1", "db2", "web1"}
    assert roll["reports"] == [roll["id"], f"{roll['id']}.rollback"]


def test_a_wave_waits_for_its_hosts_window_visibly_then_abort(
    api: httpx.Client, sshd: tuple[SshdServer, list[Host]], tmp_path: Path
) -> None:
    """``windows:`` holds a wave until every host is inside an open window (with the
    wave's duration left): the wave shows until when and why, and nothing runs."""
    state = tmp_path / "state"
    state.mkdir()
    opens = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)).replace(second=0, microsecond=0)
    closes = opens + dt.timedelta(hours=1)
    text = definition("windowed") + f'windows:\n  "*": "* {opens:%H:%M}-{closes:%H:%M} UTC"\n'
    iid = start(api, text, "windowed", state)
    wave = wait_for(
        lambda: (
            (w := instance(api, iid)["rollout"]["waves"][0])["status"] == "waiting_window" and w
        ),
        timeout=30,
        interval=0.1,
        what="wave 1 to wait for its window",
    )
    assert dt.datetime.fromisoformat(wave["waited_for_window_until"]) == opens
    assert "window is closed now" in wave["wait_reason"]
    assert wave["instances"] == {}
    assert api.put(f"{INST}/{iid}", params={"action": "abort"}).status_code == 200
    doc = ended(api, iid)
    assert doc["rollout"]["status"] == "aborted"
    assert not (state / "log").exists()


def test_executing_one_script_in_waves(
    api: httpx.Client, sshd: tuple[SshdServer, list[Host]], tmp_path: Path
) -> None:
    """``POST /scripts/ID/execute`` with ``rollout``: a generated one-task rollout
    workflow run by the same driver; a verify failure rolls back newest wave first."""
    _, hosts = sshd
    state = tmp_path / "state"
    state.mkdir()
    me = "set -- $SSH_CONNECTION; ip=$3"
    made = api.post(
        "/api/v1/automation/scripts",
        json={
            "name": "bump",
            "shell": "sh",
            "body": f'{me}; echo "$ip upgrade" >> ${{state}}/log; echo bumped',
            "parameters": [{"name": "state", "type": "string", "required": True}],
        },
    )
    assert made.status_code == 201, made.text
    script_id = made.json()["id"]
    rollout = {
        "waves": [1, "50%", "100%"],
        "verify": f"{me}; test ! -e {state}/broken-$ip",
        "rollback": f'{me}; echo "$ip rollback" >> {state}/log',
        "failure_threshold": 0,
    }

    def execute() -> str:
        resp = api.post(
            f"/api/v1/automation/scripts/{script_id}/execute",
            json={"host_ids": ["*"], "parameter_values": {"state": str(state)}, "rollout": rollout},
        )
        assert resp.status_code == 201, resp.text
        assert resp.json()["workflow"] == "bump-rollout"
        return str(resp.json()["id"])

    doc = ended(api, execute())
    assert doc["status"] == "succeeded", doc["rollout"]
    assert waves_of(doc) == [
        (["db1"], "succeeded"),
        (["db2", "web1"], "succeeded"),
        (["web2", "web3", "web4"], "succeeded"),
    ]
    assert set(log_of(state, hosts).values()) == {1} and len(log_of(state, hosts)) == 6

    (state / "log").unlink()
    web1 = next(h for h in hosts if h.name == "web1")
    (state / f"broken-{web1.address}").touch()
    doc = ended(api, execute())
    roll = doc["rollout"]
    assert roll["status"] == "rolled_back", roll
    assert [w["status"] for w in roll["waves"]] == ["rolled_back", "rolled_back", "not_run"]
    assert roll["waves"][1]["failed_hosts"]["web1"]["step"] == "verify"
    assert {h: o["state"] for h, o in roll["rollback"].items()} == {
        "db1": "rolled_back",
        "db2": "rolled_back",
        "web1": "rolled_back",
    }
    lines = (state / "log").read_text().split("\n")
    by_ip = {h.address: h.name for h in hosts}
    undone = [by_ip[ln.split()[0]] for ln in lines if ln.endswith("rollback")]
    assert sorted(undone[:2]) == ["db2", "web1"] and undone[2:] == ["db1"]


def test_a_host_whose_rollback_fails_is_flagged(
    api: httpx.Client, sshd: tuple[SshdServer, list[Host]], tmp_path: Path
) -> None:
    _, hosts = sshd
    state = tmp_path / "state"
    state.mkdir()
    me = "set -- $SSH_CONNECTION; ip=$3"
    made = api.post(
        "/api/v1/automation/scripts",
        json={"name": "touchy", "shell": "sh", "body": f"{me}; echo touched"},
    )
    assert made.status_code == 201, made.text
    by_name = {h.name: h.address for h in hosts}
    (state / f"broken-{by_name['web1']}").touch()  # wave 2 fails its verification
    (state / f"stuck-{by_name['db2']}").touch()  # and db2 cannot be rolled back
    resp = api.post(
        f"/api/v1/automation/scripts/{made.json()['id']}/execute",
        json={
            "host_ids": ["*"],
            "rollout": {
                "waves": [1, "50%", "100%"],
                "verify": f"{me}; test ! -e {state}/broken-$ip",
                "rollback": f"{me}; test ! -e {state}/stuck-$ip",
            },
        },
    )
    assert resp.status_code == 201, resp.text
    doc = ended(api, resp.json()["id"])
    roll = doc["rollout"]
    assert doc["status"] == "failed"
    assert roll["status"] == "rollback_failed", roll
    assert roll["flagged_hosts"] == ["db2"]
    assert "rollback failed on db2 (flagged)" in roll["message"]
    assert {h: o["state"] for h, o in roll["rollback"].items()} == {
        "db1": "rolled_back",
        "db2": "failed",
        "web1": "rolled_back",
    }
    assert [w["status"] for w in roll["waves"]] == ["rolled_back", "rollback_failed", "not_run"]
    report = api.get(f"/api/v1/rollouts/{roll['id']}").json()["document"]
    assert report["flagged_hosts"] == ["db2"]


class ServeOn(Serve):
    """``muster serve`` as a process (killable with -9) on SQLite or PostgreSQL."""

    def __init__(self, data: Path, known_hosts: Path, database_url: str) -> None:
        super().__init__(data, known_hosts)
        self.database_url = database_url
        self.env["MUSTER_DATABASE_URL"] = database_url

    def token(self, user: str, roles: list[str]) -> str:
        settings = Settings(data_dir=str(self.data), database_url=self.database_url)
        store = open_store(settings, open_vault=False, listen=False)
        try:
            return issue_token(store, user, roles)
        finally:
            store.close()


@pytest.fixture
def serve(
    database_url: str, tmp_path: Path, sshd: tuple[SshdServer, list[Host]]
) -> Iterator[Callable[[], ServeOn]]:
    server, _ = sshd
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_lines())
    started: list[ServeOn] = []

    def make() -> ServeOn:
        s = ServeOn(tmp_path / "data", known, database_url).start()
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


@pytest.mark.parametrize("when", ["soaking", "running"])
def test_kill9_mid_rollout_then_restart_no_host_runs_a_wave_twice(
    serve: Callable[[], ServeOn],
    sshd: tuple[SshdServer, list[Host]],
    tmp_path: Path,
    when: str,
) -> None:
    """Killed while wave 2 soaks (a timer in the store), the restarted server runs the
    soak's check and the remaining waves: every host upgraded once. Killed while wave
    2's hosts run their upgrade, those host runs end ``lost`` (the worker that held
    them died: their outcome is unknown, so they are not run again), which fails the
    gate and rolls back wave 2 then wave 1; still no host upgraded twice."""
    server, hosts = sshd
    state = tmp_path / "state"
    state.mkdir()
    first = serve()
    token = first.token("ops", ["admin"])
    with first.client(token) as api:
        register(api, hosts, server.client_key)
        nap = "0" if when == "soaking" else "8"
        iid = start(api, definition("crash", soak=4), "crash", state, nap=nap)

        def mid() -> bool:
            wave = instance(api, iid)["rollout"]["waves"][1]
            if when == "soaking":
                return bool(wave["status"] == "soaking")
            return {("db2", "upgrade"), ("web1", "upgrade")} <= set(log_of(state, hosts))

        wait_for(mid, timeout=90, interval=0.1, what=f"wave 2 {when}")
    first.kill9()

    second = serve()
    with second.client(token) as api:
        doc = ended(api, iid, timeout=120)
    roll = doc["rollout"]
    ran = log_of(state, hosts)
    upgraded = Counter(h for h, what in ran.elements() if what == "upgrade")
    assert set(upgraded.values()) == {1}, ran  # no host ran a wave twice
    if when == "soaking":
        assert doc["status"] == "succeeded", roll
        assert sorted(upgraded) == sorted(NAMES)
        assert [sorted(w["soak_instances"]) for w in roll["waves"]][:2] == [
            ["db1"],
            ["db2", "web1"],
        ]
        return
    assert roll["status"] == "rolled_back", roll
    assert sorted(upgraded) == ["db1", "db2", "web1"]
    failed = roll["waves"][1]["failed_hosts"]
    assert sorted(failed) == ["db2", "web1"], failed
    assert {f["reason"] for f in failed.values()} == {"lost"}
    assert [w["status"] for w in roll["waves"]] == [
        "rolled_back",
        "rolled_back",
        "not_run",
        "not_run",
    ]
    assert {h: o["state"] for h, o in roll["rollback"].items()} == {
        "db1": "rolled_back",
        "db2": "rolled_back",
        "web1": "rolled_back",
    }
