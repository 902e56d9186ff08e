"""The operator's pages in real headless Chromium against one real server: the
dashboard, the approvals inbox, hosts (add, edit, import with preview, delete, last
contact and result), the workers of the fleet (drained and resumed), the command
box with its live view and combined log, and administration (users, tokens,
credentials, webhooks, audit).

Each page is used by a user whose role allows it and visited by one whose role
does not: the link or button is absent and the route answers the console's HTML
403 page. Every page is checked with axe (WCAG 2.1 AA) and photographed at
1440x900 and 390x844 into artifacts/screenshots/.
"""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from muster.app import SshOptions, default_transports
from muster.server.embedded import embedded_worker_factory
from muster.testing.simfleet import SimFleet
from tests.integration.server.conftest import register_fleet
from tests.integration.server.harness import LiveServer, server_settings, wait_for

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "console-Test-pass-42!"
#: user -> roles; ``ops`` is the admin who sets things up.
USERS = {
    "ops": ["admin"],
    "opal": ["operator"],
    "vic": ["viewer"],
    "apu": ["approver"],
    "abe": ["approver"],
}
A = "/api/v1/automation"
WIDTHS = {"wide": (1440, 900), "phone": (390, 844)}
WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}

if not Path(CHROMIUM).exists():  # pragma: no cover - depends on the machine
    print(f"{CHROMIUM} is missing: console end-to-end tests skipped")
    pytest.skip(f"{CHROMIUM} is missing", allow_module_level=True)

from axe_playwright_python.sync_playwright import Axe  # noqa: E402
from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402


class _Receiver(http.server.BaseHTTPRequestHandler):
    """A webhook receiver on loopback: answers 204 and remembers what arrived."""

    received: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        self.received.append((self.headers.get("X-Muster-Event", ""), self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def fleet() -> Iterator[SimFleet]:
    sim = SimFleet(2, groups=("web",)).start_in_thread()
    try:
        yield sim
    finally:
        sim.stop_thread()


def login(client: httpx.Client, user: str) -> httpx.Client:
    resp = client.post("/api/v1/auth/login", json={"username": user, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    client.headers["X-CSRF-Token"] = resp.json()["csrf_token"]
    return client


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fleet: SimFleet) -> Iterator[LiveServer]:
    transports = default_transports(SshOptions(known_hosts=str(fleet.known_hosts_path)))
    live = LiveServer(
        server_settings(tmp_path_factory.mktemp("operator") / "data", webhook_allow="127.0.0.0/8"),
        worker_factory=embedded_worker_factory(transports),
    ).start()
    from muster.server.auth import security_store

    for name, roles in USERS.items():
        security_store(live.app).create_user(name, roles=roles, password=PASSWORD)
    with api_as(live, "ops") as api:
        register_fleet(api, fleet)
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Session:
    """Opens a logged-in tab per user; collects JavaScript errors to assert none."""

    def __init__(self, browser: Browser, server: LiveServer) -> None:
        self.browser = browser
        self.server = server
        self.contexts: list[Any] = []
        self.errors: list[str] = []

    def tab(self, user: str) -> Page:
        context = self.browser.new_context(
            base_url=self.server.url, viewport={"width": 1440, "height": 900}
        )
        context.set_default_timeout(20_000)
        self.contexts.append(context)
        resp = context.request.post(
            "/api/v1/auth/login", data={"username": user, "password": PASSWORD}
        )
        assert resp.ok, resp.text()
        tab = context.new_page()
        tab.on("pageerror", lambda exc: self.errors.append(str(exc)))
        tab.on(
            "console",
            lambda msg: (
                self.errors.append(msg.text) if "Content Security Policy" in msg.text else None
            ),
        )
        return tab


@pytest.fixture
def session(browser: Browser, server: LiveServer) -> Iterator[Session]:
    s = Session(browser, server)
    try:
        yield s
    finally:
        for context in s.contexts:
            context.close()
    assert s.errors == [], f"JavaScript or CSP errors on the pages: {s.errors}"


def look(page: Page, name: str) -> None:
    """axe (WCAG 2.1 AA) finds nothing; screenshots at both widths."""
    results = Axe().run(page, options=WCAG)
    assert results.violations_count == 0, results.generate_report()
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SHOTS / f"ops-{name}-{label}.png"), full_page=True)
        if label == "phone":
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 1, f"{name}: the page scrolls sideways by {overflow}px on a phone"
    page.set_viewport_size({"width": 1440, "height": 900})


def refused(page: Page, path: str, method: str = "GET") -> None:
    """The route answers the console's HTML 403 page (never JSON, never the page)."""
    if method == "GET":
        resp = page.goto(path)
        assert resp is not None and resp.status == 403, (path, resp and resp.status)
        expect(page.locator("h1")).to_have_text("Not allowed")
        return
    token = page.locator('meta[name="csrf-token"]').get_attribute("content") or ""
    answer = page.request.post(
        path,
        form={"csrf_token": token},
        headers={"Accept": "text/html"},
        max_redirects=0,
    )
    assert answer.status == 403, (path, answer.status)
    assert answer.headers["content-type"].startswith("text/html"), answer.headers
    assert "Not allowed" in answer.text()


def nav(page: Page) -> list[str]:
    return page.locator("header nav a").all_inner_texts()


@contextmanager
def api_as(server: LiveServer, user: str) -> Iterator[httpx.Client]:
    with server.client(token=None) as client:
        yield login(client, user)


# -- approvals and the dashboard -----------------------------------------------------


def test_approvals_inbox_dashboard_and_badge(session: Session, server: LiveServer) -> None:
    with api_as(server, "ops") as ops, api_as(server, "opal") as opal:
        script = ops.post(
            f"{A}/scripts", json={"name": "gated-restart", "shell": "sh", "body": "echo gated"}
        ).json()
        rule = {
            "required": True,
            "policy": "two_of_many",
            "approvers": ["role:approver"],
            "deadline_minutes": 120,
        }
        resp = ops.put(f"{A}/scripts/{script['id']}/approval-policy", json=rule)
        assert resp.status_code == 200, resp.text
        run = opal.post(
            f"{A}/scripts/{script['id']}/execute",
            json={"host_ids": ["web"], "parameter_values": {}},
        )
        assert run.status_code == 201, run.text
        execution_id = run.json()["id"]
        assert run.json()["status"] == "pending_approval"
        yearly = {
            "name": "yearly-report",
            "cron_expression": "0 3 1 1 *",
            "target": "command",
            "command": "true",
            "host_ids": ["web"],
        }
        made = ops.post(f"{A}/schedules", json=yearly)
        assert made.status_code == 201, made.text

    apu = session.tab("apu")
    apu.goto("/dashboard")
    expect(apu.locator("#nav-approvals .nav-badge")).to_contain_text("1")
    expect(apu.locator("section", has_text="Pending approvals")).to_contain_text(
        "gated-restart v1 on 2 hosts"
    )
    expect(apu.locator("section", has_text="Waiting")).to_contain_text("waiting for approval")
    firings = apu.locator("section", has_text="Next scheduled runs")
    expect(firings).to_contain_text(re.compile(r"01-01 03:00:00 yearly-report"))
    look(apu, "dashboard")

    apu.get_by_role("link", name=re.compile("^Approvals")).click()
    card = apu.locator(".approval").first
    expect(card).to_contain_text("gated-restart v1 on 2 hosts")
    expect(card).to_contain_text("two of many: 0 of 2")
    expect(card).to_contain_text("opal")  # who asked
    expect(card.locator("dd", has_text="UTC")).to_have_count(2)  # asked at, deadline
    look(apu, "approvals")
    card.get_by_label(re.compile("Reason")).fill("checked the change ticket")
    card.get_by_role("button", name="Approve").click()
    expect(apu.get_by_role("status")).to_contain_text("Approved: the request is now pending")
    # one of two: it stays, now among the requests the approver already voted on
    expect(apu.locator("#nav-approvals .nav-badge")).to_have_count(0)
    expect(apu.locator(".approval").first).to_contain_text("1 of 2")
    expect(apu.locator(".approval").first).to_contain_text("You have voted.")

    # a viewer sees the queue but may not vote: no buttons, the route refuses
    vic = session.tab("vic")
    vic.goto("/approvals")
    expect(vic.locator(".approval").first).to_contain_text("1 of 2")
    expect(vic.get_by_role("button", name="Approve")).to_have_count(0)
    expect(vic.locator("#nav-approvals .nav-badge")).to_have_count(0)
    approval_id = (vic.locator(".approval").first.get_attribute("id") or "").removeprefix(
        "approval-"
    )
    refused(vic, f"/approvals/{approval_id}/approve", "POST")

    # the second approver settles it: the execution is queued and runs
    abe = session.tab("abe")
    abe.goto("/approvals")
    abe.locator(".approval").first.get_by_role("button", name="Approve").click()
    expect(abe.get_by_role("status")).to_contain_text("the request is now approved")
    abe.goto(f"/executions/{execution_id}")
    expect(abe.locator("#status")).to_have_text("succeeded")
    abe.goto("/approvals")
    expect(abe.locator(".approval")).to_have_count(0)


# -- hosts ---------------------------------------------------------------------------


INVENTORY = """\
[db]
db-1 ansible_host=10.0.0.11 ansible_user=postgres
db-2 ansible_host=10.0.0.12 ansible_port=2222
"""


def test_hosts_add_edit_import_delete_and_contact(session: Session, server: LiveServer) -> None:
    ops = session.tab("ops")
    # last contact and last result come from real runs on the simulated hosts
    with api_as(server, "ops") as api:
        done = api.post(
            f"{A}/commands", json={"command": "echo contact", "host_ids": ["web"]}
        ).json()
    ops.goto(f"/executions/{done['id']}")
    expect(ops.locator("#status")).to_have_text("succeeded")
    ops.goto("/hosts")
    row = ops.locator("#hosts tbody tr", has_text="sim0001")
    expect(row.locator("td[data-label='Last contact']")).to_have_text(re.compile(r"^\d{4}-"))
    expect(row.locator("td[data-label='Last result'] .badge")).to_have_text("succeeded")
    look(ops, "hosts")

    ops.get_by_role("link", name="Add host").click()
    ops.get_by_label("Name").fill("bad name!")
    ops.get_by_role("button", name="Add host").click()
    expect(ops.locator("#err-name")).to_contain_text("only letters, digits")
    expect(ops.get_by_label("Name")).to_have_value("bad name!")
    ops.get_by_label("Name").fill("app-1")
    ops.get_by_label("Address").fill("10.0.0.5")
    ops.get_by_label("Groups").fill("app, blue")
    ops.get_by_label("Labels").fill("tier=front")
    look(ops, "host-new")
    ops.get_by_role("button", name="Add host").click()
    expect(ops.get_by_role("status")).to_have_text("Host app-1 added.")
    expect(ops.locator(".facts")).to_contain_text("10.0.0.5")
    ops.get_by_role("link", name="Edit").click()
    ops.get_by_label("Port", exact=True).fill("2200")
    look(ops, "host-edit")
    ops.get_by_role("button", name="Save").click()
    expect(ops.locator(".facts")).to_contain_text("10.0.0.5:2200")

    # import: a preview first, nothing stored until "Import"
    ops.goto("/hosts/import")
    ops.get_by_label("Inventory").fill(INVENTORY)
    ops.get_by_role("button", name="Preview").click()
    expect(ops.locator("#preview tbody tr")).to_have_count(2)
    expect(ops.locator("#preview")).to_contain_text("10.0.0.12:2222")
    look(ops, "host-import-preview")
    with api_as(server, "ops") as api:
        names = {h["name"] for h in api.get("/api/v1/hosts").json()["items"]}
    assert "db-1" not in names, "a preview stored hosts"
    ops.get_by_role("button", name="Import 2 hosts").click()
    expect(ops.get_by_role("status")).to_have_text("Imported 2 hosts: 2 new, 0 updated.")
    expect(ops.locator("#hosts tbody tr", has_text="db-2")).to_have_count(1)

    ops.goto("/hosts/app-1")
    ops.once("dialog", lambda dialog: dialog.accept())
    ops.get_by_role("button", name="Delete").click()
    expect(ops.get_by_role("status")).to_have_text("Host app-1 deleted.")
    expect(ops.locator("#hosts tbody tr", has_text="app-1")).to_have_count(0)

    vic = session.tab("vic")
    vic.goto("/hosts?done=Your+session+expired:+log+in+at+evil.example")
    expect(vic.locator("#hosts")).to_be_visible()
    expect(vic.get_by_role("status")).to_have_count(0)  # only notices the server signed show
    expect(vic.get_by_role("link", name="Add host")).to_have_count(0)
    expect(vic.get_by_role("link", name="Import inventory")).to_have_count(0)
    vic.goto("/hosts/db-1")
    expect(vic.get_by_role("link", name="Edit")).to_have_count(0)
    expect(vic.get_by_role("button", name="Delete")).to_have_count(0)
    refused(vic, "/hosts/new")
    refused(vic, "/hosts/import")
    refused(vic, "/hosts/db-1/edit")
    refused(vic, "/hosts/db-1/delete", "POST")


def _worker_state(api: httpx.Client, worker_id: str) -> str:
    return str(api.get(f"/api/v1/workers/{quote(worker_id, safe='')}").json()["state"])


def test_workers_page_lists_the_fleet_drains_and_resumes(
    session: Session, server: LiveServer
) -> None:
    from muster.server.auth import security_store

    store = security_store(server.app)
    # Two workers of other machines: one that died without a word (its lease long
    # gone), one alive that this page can drain although no process here runs it.
    store.register_worker("far-lost", hostname="node-gone", pid=11, lease_seconds=0.001)
    store.register_worker("far-up", hostname="node-b", pid=22, lease_seconds=3600)
    with api_as(server, "ops") as api:
        own_id = next(w["id"] for w in api.get("/api/v1/workers").json()["items"] if w["embedded"])

    ops = session.tab("ops")
    ops.goto("/hosts")
    ops.get_by_role("link", name="Workers").click()
    expect(ops.get_by_role("heading", name="Workers")).to_be_visible()
    expect(ops.locator("header nav a[aria-current=page]")).to_have_text("Hosts")
    rows = ops.locator("#workers tbody tr")
    own = rows.filter(has_text="(this server)")
    expect(own.locator(".worker-state")).to_have_text("running")
    expect(rows.filter(has_text="far-lost").locator(".worker-state")).to_have_text("lost")
    far = rows.filter(has_text="far-up")
    expect(far.locator("td[data-label='Host']")).to_have_text("node-b")
    expect(far.locator("td[data-label='PID']")).to_have_text("22")
    expect(far.locator(".worker-state")).to_have_text("running")
    look(ops, "workers")

    ops.once("dialog", lambda dialog: dialog.accept())
    own.get_by_role("button", name="Drain").click()
    expect(ops.get_by_role("status")).to_contain_text(f"Worker {own_id} claims nothing new")
    expect(own.locator("td[data-label='Drain asked']")).to_contain_text("ops")
    expect(own.get_by_role("button", name="Resume")).to_be_visible()
    with api_as(server, "ops") as api:
        # It holds nothing, so it answers "drained" (written by the worker itself).
        wait_for(lambda: _worker_state(api, own_id) == "drained", what="drained")
    ops.reload()
    expect(own.locator(".worker-state")).to_have_text("drained")

    # The other machine's worker: the flag is set; its state stays its own word.
    ops.once("dialog", lambda dialog: dialog.accept())
    far.get_by_role("button", name="Drain").click()
    expect(far.locator("td[data-label='Drain asked']")).to_contain_text("ops")
    expect(far.locator(".worker-state")).to_have_text("running")

    own.get_by_role("button", name="Resume").click()
    expect(ops.get_by_role("status")).to_have_text(f"Worker {own_id} takes work again.")
    with api_as(server, "ops") as api:
        wait_for(lambda: _worker_state(api, own_id) == "running", what="running again")
        audit = api.get("/api/v1/audit?action=worker.drain").json()["items"]
        assert {a["target"] for a in audit} >= {f"worker:{own_id}", "worker:far-up"}
        assert all(a["actor"] == "ops" for a in audit)
        far_id = quote("far-up")
        assert api.post(f"/api/v1/workers/{far_id}/resume").json()["draining"] is False
    ops.reload()
    expect(own.locator(".worker-state")).to_have_text("running")
    expect(own.get_by_role("button", name="Drain")).to_be_visible()

    vic = session.tab("vic")
    vic.goto("/workers")
    expect(vic.locator("#workers tbody tr")).to_have_count(rows.count())
    expect(vic.get_by_role("button", name="Drain")).to_have_count(0)
    expect(vic.get_by_role("button", name="Resume")).to_have_count(0)
    refused(vic, f"/workers/{quote(own_id, safe='')}/drain", "POST")
    refused(vic, "/workers/far-up/resume", "POST")


# -- the command box and the combined log --------------------------------------------


def test_command_box_live_view_and_combined_log(session: Session, server: LiveServer) -> None:
    opal = session.tab("opal")
    opal.goto("/dashboard")
    assert "Commands" in nav(opal)
    opal.get_by_role("link", name="Commands").click()
    opal.get_by_label("Command").fill(
        'for i in 1 2 3; do echo "line $i from $MUSTER_SIM_HOST"; done; echo oops >&2'
    )
    opal.get_by_label(re.compile("Host names, groups")).fill("web")
    expect(opal.locator("#target-count")).to_have_text("2 hosts selected")
    look(opal, "commands")
    opal.get_by_role("button", name="Run").click()
    expect(opal).to_have_url(re.compile(r"/executions/[0-9a-f-]+$"))
    expect(opal.locator("#status")).to_have_text("succeeded")
    execution_id = opal.url.rsplit("/", 1)[1]

    opal.get_by_role("link", name="Combined log").click()
    log = opal.locator("#combined-log")
    expect(log).to_contain_text("sim0001 | line 1 from sim0001")
    expect(log).to_contain_text("sim0002 ! oops")
    lines = log.inner_text().splitlines()
    assert len(lines) == 8, lines
    for host in ("sim0001", "sim0002"):
        mine = [line for line in lines if line.startswith(host) and "|" in line]
        assert [line.rsplit(" ", 3)[-3] for line in mine] == ["1", "2", "3"], mine
    look(opal, "combined-log")
    opal.get_by_label(re.compile("^Host")).fill("sim0002")
    opal.get_by_label("Text").fill("LINE 2")
    opal.get_by_role("button", name="Filter").click()
    expect(log).to_have_text("sim0002 | line 2 from sim0002")
    with opal.expect_download() as download:
        opal.get_by_role("link", name="Download").click()
    got = download.value
    assert got.suggested_filename == f"muster-{execution_id}-combined.log"
    assert Path(got.path()).read_text() == "sim0002 | line 2 from sim0002\n"
    whole = opal.request.get(f"/executions/{execution_id}/log?download=1")
    assert whole.headers["content-type"].startswith("text/plain")
    assert "attachment" in whole.headers["content-disposition"]
    assert len(whole.text().splitlines()) == 8

    vic = session.tab("vic")
    vic.goto("/dashboard")
    assert "Commands" not in nav(vic)
    refused(vic, "/commands")
    refused(vic, "/commands", "POST")
    vic.goto(f"/executions/{execution_id}/log")  # reading stays open to viewers
    expect(vic.locator("#combined-log")).to_contain_text("line 3 from sim0002")


# -- administration ------------------------------------------------------------------


def test_users_tokens_credentials_webhooks_audit(
    session: Session, server: LiveServer, receiver: str
) -> None:
    ops = session.tab("ops")
    ops.goto("/admin")
    look(ops, "admin")
    ops.get_by_role("link", name="Users and roles").click()
    form = ops.locator("#new-user")
    form.get_by_label("Name").fill("newbie")
    form.get_by_label("operator").check()
    ops.get_by_role("button", name="Create user").click()
    one_time = ops.locator("#one-time").input_value()
    assert len(one_time) >= 12
    look(ops, "users")
    ops.goto("/admin/users")
    assert one_time not in ops.content(), "a one-time password was shown twice"
    row = ops.locator("#user-newbie")
    expect(row).to_contain_text("must change password")
    row.get_by_label("approver").check()
    row.get_by_role("button", name="Save roles").click()
    expect(ops.get_by_role("status")).to_contain_text("User newbie saved.")
    expect(ops.locator("#user-newbie").get_by_label("approver")).to_be_checked()
    ops.once("dialog", lambda dialog: dialog.accept())
    ops.locator("#user-newbie").get_by_role("button", name="Disable").click()
    expect(ops.locator("#user-newbie")).to_contain_text("disabled")
    ops.locator("#user-newbie").get_by_role("button", name="Enable").click()
    ops.once("dialog", lambda dialog: dialog.accept())
    ops.locator("#user-newbie").get_by_role("button", name="Reset password").click()
    second = ops.locator("#one-time").input_value()
    assert second and second != one_time

    ops.goto("/tokens")
    ops.get_by_label("Name").fill("ci")
    ops.get_by_label(re.compile("Expires after")).fill("7")
    ops.get_by_label("Narrow to a role").select_option("viewer")
    ops.get_by_role("button", name="Create token").click()
    token = ops.locator("#new-token").input_value()
    assert token.startswith("mst_")
    with server.client(token=None) as raw:
        me = raw.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["token_role"] == "viewer"
    look(ops, "tokens")
    ops.goto("/tokens")
    assert token not in ops.content()
    expect(ops.locator("#tokens")).to_contain_text("viewer")
    ops.once("dialog", lambda dialog: dialog.accept())
    ops.locator("#tokens tr", has_text="ci").get_by_role("button", name="Revoke").click()
    expect(ops.locator("#tokens")).to_contain_text("revoked")
    with server.client(token=None) as raw:
        gone = raw.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert gone.status_code == 401

    secret_value = "pa55-word-never-shown"
    ops.goto("/admin/credentials")
    cred = ops.locator("#new-credential")
    cred.get_by_label("Name").fill("deploy-pw")
    cred.get_by_label("Kind").select_option("password")
    cred.get_by_label("Login user").fill("deploy")
    cred.get_by_label(re.compile("^Value")).fill(secret_value)
    ops.get_by_role("button", name="Save credential").click()
    expect(ops.get_by_role("status")).to_have_text("Credential deploy-pw saved.")
    assert secret_value not in ops.content()
    with api_as(server, "ops") as api:
        resp = api.post(
            "/api/v1/hosts",
            json={"name": "vault-user", "address": "10.9.9.9", "credential_ref": "deploy-pw"},
        )
        assert resp.status_code == 201, resp.text
    ops.reload()
    row = ops.locator("#credential-deploy-pw")
    expect(row).to_contain_text("host vault-user")
    expect(row.get_by_role("button", name="Delete")).to_have_count(0)  # in use
    look(ops, "credentials")
    row.get_by_text("Replace value").click()
    row.get_by_label(re.compile("New value")).fill("a-new-pa55-word")
    row.get_by_role("button", name="Replace").click()
    expect(ops.get_by_role("status")).to_have_text("Credential deploy-pw has a new value.")
    assert "a-new-pa55-word" not in ops.content()
    with api_as(server, "ops") as api:
        assert api.delete("/api/v1/hosts/vault-user").status_code == 204
    ops.reload()
    ops.once("dialog", lambda dialog: dialog.accept())
    ops.locator("#credential-deploy-pw").get_by_role("button", name="Delete").click()
    expect(ops.get_by_role("status")).to_have_text("Credential deploy-pw deleted.")

    ops.goto("/admin/webhooks")
    hook = ops.locator("#new-webhook")
    hook.get_by_label("URL").fill(receiver)
    hook.get_by_label("Signing secret").fill("s3cret-signing-key")
    ops.get_by_role("button", name="Create webhook").click()
    expect(ops.get_by_role("status")).to_have_text("Webhook created.")
    assert "s3cret-signing-key" not in ops.content()
    ops.get_by_role("button", name="Send test").click()
    expect(ops.get_by_role("status")).to_contain_text("A ping event was queued")
    deliveries = ops.locator("#deliveries tbody tr", has_text="ping")
    for _ in range(40):  # delivery is asynchronous: reload until it is recorded
        if "delivered" in (deliveries.first.text_content() or ""):
            break
        ops.wait_for_timeout(250)
        ops.reload()
    expect(deliveries.first).to_contain_text("delivered")
    expect(deliveries.first).to_contain_text("204")
    assert any(event == "ping" for event, _ in _Receiver.received)
    look(ops, "webhook")
    ops.goto("/admin/webhooks")
    look(ops, "webhooks")

    ops.goto("/admin/audit?action=user.*&target=user:newbie")
    rows = ops.locator("#audit tbody tr")
    expect(rows.first).to_contain_text("user.update")
    actions = rows.locator("td[data-label='Action']").all_inner_texts()
    assert set(actions) == {"user.create", "user.update"}, actions
    ops.get_by_label("Actor").fill("ops")
    ops.get_by_label("Action").fill("credential.*")
    ops.get_by_label("Target").fill("")
    ops.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(3)
    actions = rows.locator("td[data-label='Action']").all_inner_texts()
    assert actions == ["credential.delete", "credential.replace", "credential.create"], actions
    ops.get_by_role("button", name="Verify the chain").click()
    expect(ops.locator("#verify-result")).to_contain_text("The chain holds")
    look(ops, "audit")
    assert "a-new-pa55-word" not in ops.content() and secret_value not in ops.content()

    vic = session.tab("vic")
    vic.goto("/admin")
    for name in ("Users and roles", "Webhooks", "Audit log"):
        expect(vic.get_by_role("link", name=name)).to_have_count(0)
    refused(vic, "/admin/users")
    refused(vic, "/admin/webhooks")
    refused(vic, "/admin/audit")
    refused(vic, "/admin/users", "POST")
    refused(vic, "/admin/credentials", "POST")
    vic.goto("/admin/credentials")  # names are host metadata; writing is not for viewers
    expect(vic.get_by_role("button", name="Save credential")).to_have_count(0)
    vic.goto("/tokens")  # everyone has their own tokens
    expect(vic.get_by_role("button", name="Create token")).to_be_visible()
