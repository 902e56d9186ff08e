"""The web console in real headless Chromium (Playwright) against a real server.

Three hosts: ``localhost`` (local transport) and two simulated SSH hosts in
group ``web``. The scenario is the one an operator lives: write a script with
an integer and a secret parameter, have a bad integer refused beside its
field, execute on three hosts, watch output arrive while it still runs, see
the final states with the secret masked, find it in history, make version 2
and diff the two. Screenshots of every page go to artifacts/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from muster.app import SshOptions, default_transports
from muster.server.embedded import embedded_worker_factory
from muster.testing.simfleet import SimFleet
from tests.integration.server.conftest import register_fleet
from tests.integration.server.harness import LiveServer, server_settings

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
SECRET = "hunter2-very-secret"
USER = "ops"
PASSWORD = "console-Test-pass-42!"

if not Path(CHROMIUM).exists():  # pragma: no cover - depends on the machine
    print(f"{CHROMIUM} is missing: console end-to-end tests skipped")
    pytest.skip(f"{CHROMIUM} is missing", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def fleet() -> Iterator[SimFleet]:
    sim = SimFleet(2, groups=("web",)).start_in_thread()
    try:
        yield sim
    finally:
        sim.stop_thread()


def auth_installed(live: LiveServer) -> bool:
    """Whether the app runs the login middleware (then the tests log in as ``ops``)."""
    try:
        from muster.server.auth import AuthMiddleware
    except ImportError:
        return False
    return any(m.cls is AuthMiddleware for m in live.app.user_middleware)


@contextmanager
def api_client(live: LiveServer) -> Iterator[Any]:
    """An HTTP client for setup, logged in (session cookie + CSRF header) when needed."""
    with live.client() as client:
        if auth_installed(live):
            resp = client.post("/api/v1/auth/login", json={"username": USER, "password": PASSWORD})
            assert resp.status_code == 200, resp.text
            client.headers["X-CSRF-Token"] = resp.json()["csrf_token"]
        yield client


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fleet: SimFleet) -> Iterator[LiveServer]:
    transports = default_transports(SshOptions(known_hosts=str(fleet.known_hosts_path)))
    live = LiveServer(
        server_settings(tmp_path_factory.mktemp("console") / "data"),
        localhost=True,
        worker_factory=embedded_worker_factory(transports),
    ).start()
    if auth_installed(live):
        from muster.server.auth import security_store

        security_store(live.app).create_user(USER, roles=["admin"], password=PASSWORD)
    with api_client(live) as api:
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


@pytest.fixture
def page(browser: Browser, server: LiveServer) -> Iterator[Page]:
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    if auth_installed(server):
        # The session cookie lands in the context's cookie jar, as a browser login would.
        resp = context.request.post(
            "/api/v1/auth/login", data={"username": USER, "password": PASSWORD}
        )
        assert resp.ok, resp.text()
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    blocked = watch_policy(tab)
    try:
        yield tab
    finally:
        context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
    assert blocked == [], f"the Content-Security-Policy blocked part of the console: {blocked}"


def watch_policy(tab: Page) -> list[str]:
    """Collects what the page's Content-Security-Policy refused (inline code, styles)."""
    blocked: list[str] = []
    tab.on(
        "console",
        lambda msg: blocked.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    return blocked


def shot(page: Page, name: str, **kw: Any) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True, **kw)


def body(gate: Path) -> str:
    return (
        "# progress lines, then wait for the test to open the gate\n"
        'echo "starting ${count} steps"\n'
        "for i in $(seq 1 ${count}); do\n"
        '  echo "progress $i"\n'
        "  sleep 0.2\n"
        "done\n"
        f"while [ ! -e '{gate}' ]; do sleep 0.1; done\n"
        'echo "token=${token}"\n'
        "echo done\n"
    )


def test_script_to_execution_to_history_to_diff(
    page: Page, server: LiveServer, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"

    # -- write the script ----------------------------------------------------
    page.goto("/scripts")
    page.get_by_role("link", name="New script").click()
    page.get_by_label("Name", exact=True).fill("e2e-progress")
    page.get_by_label("Shell").select_option("bash")
    page.get_by_label("Description", exact=True).fill("prints progress, waits for a gate")
    page.locator("#body").fill(body(gate))
    page.locator("#p0_name").fill("count")
    page.locator("#p0_type").select_option("integer")
    page.locator("#p0_required").check()
    page.locator("#p0_description").fill("how many progress lines")
    page.get_by_role("button", name="Add parameter").click()
    page.locator("#p1_name").fill("token")
    page.locator("#p1_type").select_option("secret")
    page.locator("#p1_required").check()
    page.locator("#tags").fill("e2e, demo")
    # The overlay highlights the declared placeholder ${count} as a parameter.
    expect(page.locator(".editor-view .tok-p").first).to_have_text("${count}")
    shot(page, "01-script-editor")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved as version 1.")
    expect(page.locator("h1")).to_contain_text("e2e-progress")
    shot(page, "02-script-page")
    page.goto("/scripts")
    expect(page.locator("table.list tbody tr")).to_have_count(1)
    page.get_by_label("Search").fill("progress")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("link", name="e2e-progress")).to_be_visible()
    shot(page, "03-scripts-list")

    # -- a bad integer is refused beside its field, with the API's rule ------
    page.get_by_role("link", name="Execute").first.click()
    targets = page.get_by_label(re.compile("Host names, groups"))
    expect(targets).to_have_value("")  # the server's own machine is never pre-selected
    targets.fill("localhost, web")
    expect(page.locator("#target-count")).to_have_text("3 hosts selected")
    page.locator("#param-count").fill("2.5")
    page.locator("#param-token").fill(SECRET)
    page.get_by_role("button", name="Execute").click()
    problem = page.locator("#err-count")
    expect(problem).to_contain_text("expected an integer")
    expect(page.locator("#param-count")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#param-token")).to_have_value("")  # a secret is never sent back
    assert SECRET not in page.content()
    shot(page, "04-execute-rejected")

    # -- execute on three hosts and watch output arrive while it runs -------
    page.locator("#param-count").fill("3")
    page.locator("#param-token").fill(SECRET)
    expect(page.locator("#target-count")).to_have_text("3 hosts selected")
    page.get_by_role("button", name="Execute").click()
    expect(page).to_have_url(re.compile(r"/executions/[0-9a-f-]+$"))
    cells = page.locator("#grid .cell")
    expect(cells).to_have_count(3)
    expect(page.locator("#status")).to_have_text("running")
    page.locator('#grid .cell[data-host="localhost"]').click()
    stdout = page.locator("#panel-stdout")
    expect(stdout).to_contain_text("progress 3")
    # Still running: the script is parked on the gate, so this output was live.
    expect(page.locator("#status")).to_have_text("running")
    expect(page.locator("#panel-state")).to_have_text("running")
    shot(page, "05-execution-running")
    gate.touch()
    expect(page.locator("#status")).to_have_text("succeeded")
    expect(page.locator("#counts")).to_have_text("3 succeeded")
    expect(page.locator("#grid .cell.s-succeeded")).to_have_count(3)
    expect(page.locator("#progress-text")).to_contain_text("3 of 3 hosts finished (100%)")
    expect(page.locator("#groups li")).to_have_count(1)
    expect(page.locator("#groups")).to_contain_text("3 hosts: same output, exit 0")
    expect(stdout).to_contain_text("token=***")
    expect(page.locator("#panel-state")).to_have_text("succeeded")
    expect(page.locator("#panel-meta")).to_contain_text("exit 0")
    expect(page.locator(".params-shown")).to_contain_text("token***")
    assert SECRET not in page.content()
    shot(page, "06-execution-finished")
    page.get_by_role("link", name="Failed only").click()
    expect(cells).to_have_count(0)
    expect(page).to_have_url(re.compile(r"filter=failed"))
    page.get_by_role("link", name="All", exact=True).click()
    expect(cells).to_have_count(3)
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "07-execution-phone")
    page.set_viewport_size({"width": 1280, "height": 900})
    execution_url = page.url

    # -- history finds it; opening it shows the execution view --------------
    page.get_by_role("link", name="History").click()
    page.get_by_label("Script").fill("e2e-progress")
    page.get_by_label("State").select_option("succeeded")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#history tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".badge")).to_have_text("succeeded")
    shot(page, "08-history")
    rows.first.get_by_role("link", name="e2e-progress v1").click()
    expect(page).to_have_url(execution_url)
    page.goto("/history?host=nobody")
    expect(page.locator("#err-host")).to_contain_text("no host or group named 'nobody'")

    # -- hosts ---------------------------------------------------------------
    page.get_by_role("link", name="Hosts").click()
    expect(page.locator("#hosts tbody tr")).to_have_count(3)
    shot(page, "09-hosts")
    page.get_by_role("link", name="sim0001").click()
    expect(page.locator("table.list tbody tr")).to_have_count(1)
    expect(page.locator("table.list")).to_contain_text("e2e-progress v1")
    shot(page, "10-host")

    # -- version 2 and a side-by-side diff ----------------------------------
    page.goto("/scripts")
    page.get_by_role("link", name="e2e-progress").click()
    page.get_by_role("link", name="Edit").click()
    new_body = body(gate).replace("echo done\n", 'echo "all ${count} done"\n')
    page.locator("#body").fill(new_body)
    page.get_by_role("button", name=re.compile("Save")).click()
    expect(page.get_by_role("status")).to_have_text("Saved as version 2.")
    expect(page.locator("#version-list tbody tr")).to_have_count(2)
    page.get_by_role("button", name="Show diff").click()
    expect(page.locator("table.diff tr.d-changed")).to_have_count(1)
    changed = page.locator("table.diff tr.d-changed")
    expect(changed.locator("td.l")).to_have_text("echo done")
    expect(changed.locator("td.r")).to_have_text('echo "all ${count} done"')
    shot(page, "11-diff")
    # Restoring v1 makes its content the newest version again (v3).
    page.goto(page.url.split("/diff")[0])
    page.get_by_role("button", name="Restore v1").click()
    expect(page.get_by_role("status")).to_have_text("Saved as version 3.")


def test_error_pages_are_friendly_and_the_api_keeps_json(page: Page, server: LiveServer) -> None:
    response = page.goto("/scripts/no-such-script")
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("Not found")
    expect(page.locator("main")).to_contain_text("no script 'no-such-script'")
    assert "Traceback" not in page.content()
    shot(page, "12-error-page")
    api = page.request.get("/api/v1/automation/scripts/no-such-script")
    assert api.status == 404
    assert api.json()["message"] == "no script 'no-such-script'"


def test_script_form_keeps_input_and_marks_bad_fields(page: Page) -> None:
    page.goto("/scripts/new")
    page.get_by_label("Name", exact=True).fill("bad-form")
    page.locator("#body").fill("echo ${n}")
    page.locator("#p0_name").fill("n")
    page.locator("#p0_type").select_option("integer")
    page.locator("#p0_default").fill("many")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#err-p0_default")).to_contain_text("invalid default")
    expect(page.locator("#p0_default")).to_have_value("many")
    expect(page.locator("#body")).to_have_value("echo ${n}")
    page.get_by_role("link", name="Scripts").click()
    expect(page.get_by_role("link", name="bad-form")).to_have_count(0)


def test_keyboard_moves_through_the_host_grid(page: Page, server: LiveServer) -> None:
    with api_client(server) as api:
        script = api.post(
            "/api/v1/automation/scripts",
            json={"name": "e2e-keys", "shell": "sh", "body": "echo hi"},
        ).json()
        started = api.post(
            f"/api/v1/automation/scripts/{script['id']}/execute",
            json={"host_ids": ["localhost", "web"], "parameter_values": {}},
        ).json()
    page.goto(f"/executions/{started['id']}")
    expect(page.locator("#status")).to_have_text("succeeded")
    first = page.locator("#grid .cell").first
    first.focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#grid .cell").nth(1)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#panel-stdout")).to_have_text("hi\n")
    page.keyboard.press("Escape")
    expect(page.locator("#host-panel")).to_be_hidden()


def test_login_page_signs_in_and_follows_next(browser: Browser, server: LiveServer) -> None:
    if not auth_installed(server):
        print("the auth middleware is not installed: every console page is open; login skipped")
        pytest.skip("auth middleware not installed")
    from muster.server.permissions import rule_for

    found = rule_for("GET", "/login")
    if found is None or found[1].need != "public":
        print("GET /login is not public in server/permissions.py yet (see WEB_RULES): skipped")
        pytest.skip("/login not declared public")
    context = browser.new_context(base_url=server.url)
    try:
        tab = context.new_page()
        tab.goto("/history")  # logged out: sent to the login page, then back
        expect(tab).to_have_url(re.compile(r"/login\?next=%2Fhistory$"))
        tab.get_by_label("User").fill(USER)
        tab.get_by_label("Password").fill("wrong-password-123")
        tab.get_by_role("button", name="Log in").click()
        expect(tab.locator("#login-problem")).to_be_visible()
        shot(tab, "00-login")
        tab.get_by_label("Password").fill(PASSWORD)
        tab.get_by_role("button", name="Log in").click()
        expect(tab).to_have_url(re.compile(r"/history$"))
        expect(tab.locator(".who")).to_have_text(USER)
        expect(tab.locator('meta[name="csrf-token"]')).not_to_have_attribute("content", "")
        tab.get_by_role("button", name="Log out").click()
        expect(tab).to_have_url(re.compile(r"/login$"))
        tab.goto("/scripts")
        expect(tab).to_have_url(re.compile(r"/login\?next=%2Fscripts$"))
    finally:
        context.close()


HOSTILE_NEXT = [
    "/\\evil.example",
    "/\t/evil.example",
    "//evil.example",
    "https://evil.example",
    "/%5Cevil.example",
    "/%2F%2Fevil.example",
    "javascript:alert(1)",
]


def test_login_next_never_leaves_the_site(browser: Browser, server: LiveServer) -> None:
    """Whatever ``next`` says, the browser ends on this server after logging in."""
    from urllib.parse import urlencode, urlsplit

    if not auth_installed(server):
        pytest.skip("auth middleware not installed")
    here = urlsplit(server.url).netloc
    for hostile in HOSTILE_NEXT:
        context = browser.new_context(base_url=server.url)
        try:
            tab = context.new_page()
            blocked = watch_policy(tab)
            tab.goto("/login?" + urlencode({"next": hostile}))
            tab.get_by_label("User").fill(USER)
            tab.get_by_label("Password").fill(PASSWORD)
            tab.get_by_role("button", name="Log in").click()
            expect(tab.locator(".who")).to_have_text(USER)
            assert urlsplit(tab.url).netloc == here, (hostile, tab.url)
            assert blocked == [], blocked
        finally:
            context.close()


def test_a_one_time_password_must_be_changed_first(browser: Browser, server: LiveServer) -> None:
    if not auth_installed(server):
        pytest.skip("auth middleware not installed")
    from muster.security.passwords import generate_password
    from muster.server.auth import security_store

    first = generate_password()
    security_store(server.app).create_user(
        "newcomer", roles=["viewer"], password=first, must_change_password=True
    )
    context = browser.new_context(base_url=server.url)
    try:
        tab = context.new_page()
        blocked = watch_policy(tab)
        tab.goto("/history")
        tab.get_by_label("User").fill("newcomer")
        tab.get_by_label("Password").fill(first)
        tab.get_by_role("button", name="Log in").click()
        expect(tab).to_have_url(re.compile(r"/password\?next=%2Fhistory$"))
        tab.goto("/scripts")  # anything else leads back to the password page
        expect(tab).to_have_url(re.compile(r"/password\?next=%2Fscripts$"))
        tab.get_by_label("Current password").fill(first)
        tab.get_by_label("New password", exact=True).fill("violet-harbour-engine-19")
        tab.get_by_label("New password again").fill("violet-harbour-engine-19")
        shot(tab, "00-change-password")
        tab.get_by_role("button", name="Change password").click()
        expect(tab).to_have_url(re.compile(r"/scripts$"))
        expect(tab.locator(".who")).to_have_text("newcomer")
        assert blocked == [], blocked
    finally:
        context.close()


def test_results_grouped_and_failed_hosts_rerun(page: Page, server: LiveServer) -> None:
    with api_client(server) as api:
        script = api.post(
            "/api/v1/automation/scripts",
            json={
                "name": "e2e-mixed",
                "shell": "sh",
                "body": 'if [ "${MUSTER_SIM_HOST:-local}" = sim0002 ]; then\n'
                '  echo "disk full" >&2; exit 1\nfi\necho ok\n',
            },
        ).json()
        started = api.post(
            f"/api/v1/automation/scripts/{script['id']}/execute",
            json={"host_ids": ["localhost", "web"], "parameter_values": {}},
        ).json()
    page.goto(f"/executions/{started['id']}")
    expect(page.locator("#status")).to_have_text("failed")
    groups = page.locator("#groups li")
    expect(groups).to_have_count(2)
    expect(groups.nth(0)).to_contain_text("2 hosts: same output, exit 0")
    expect(groups.nth(1)).to_contain_text("1 host: exit 1, 'disk full'")
    expect(page.locator("#counts")).to_contain_text("1 failed")
    # A group is a filter: only its hosts stay in the grid.
    groups.nth(1).get_by_role("link").click()
    expect(page.locator("#grid .cell")).to_have_count(1)
    expect(page.locator("#grid .cell")).to_have_attribute("data-host", "sim0002")
    page.get_by_role("link", name="Failed only").click()
    expect(page.locator("#grid .cell.s-failed")).to_have_count(1)
    shot(page, "13-execution-failed-grouped")
    page.get_by_role("button", name="Re-run failed hosts").click()
    expect(page).to_have_url(re.compile(r"filter=rerun"))
    expect(page.locator("#status")).to_have_text("failed")
    page.get_by_role("link", name="All", exact=True).click()
    expect(page.locator("#grid .cell")).to_have_count(3)
    page.locator('#grid .cell[data-host="sim0002"]').click()
    expect(page.locator("#panel-stderr")).to_have_text("disk full\n")
    expect(page.locator("#panel-meta")).to_contain_text("attempt 2")


def test_execute_form_sets_the_pace_and_names_bad_fields(page: Page, server: LiveServer) -> None:
    with api_client(server) as api:
        script = api.post(
            "/api/v1/automation/scripts",
            json={"name": "e2e-paced", "shell": "sh", "body": "echo paced\n"},
        ).json()
    page.goto(f"/scripts/{script['id']}/execute")
    page.get_by_label("Host names, groups, globs or label=value (comma separated)").fill("web")
    page.get_by_label("Hosts at once (forks)").fill("many")
    page.get_by_label("Time between host starts (e.g. 2s, 1m)").fill("soon")
    page.get_by_role("button", name="Execute").click()
    # Both bad fields are named at once, and what was typed stays.
    expect(page.locator("#err-forks")).to_contain_text("whole number")
    expect(page.get_by_label("Hosts at once (forks)")).to_have_value("many")
    expect(page.locator("#err-delay")).to_contain_text("not a duration")
    page.get_by_label("Hosts at once (forks)").fill("1")
    page.get_by_label("Hosts at once per group").fill("1")
    page.get_by_label("Time between host starts (e.g. 2s, 1m)").fill("0.2s")
    page.get_by_role("button", name="Execute").click()
    expect(page).to_have_url(re.compile(r"/executions/"))
    execution_id = page.url.rstrip("/").split("/")[-1].split("?")[0]
    with api_client(server) as api:
        stored = api.get(f"/api/v1/automation/executions/{execution_id}").json()
    assert stored["throttle"] == {"forks": 1, "per_group": 1, "delay": 0.2}
