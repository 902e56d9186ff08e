"""The console's first-day defects (issue 11), each in real headless Chromium, each as
a user whose role allows the action and as one whose role does not: for the
latter the button is absent and the route itself refuses, with a page in the
console's layout (never a raw JSON body).

One server and one browser for the module; every test logs its users in
through fresh browser contexts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from muster.testing.simfleet import SimFleet
from tests.e2e.console_kit import (
    ARGS,
    CHROMIUM,
    PASSWORD,
    PHONE,
    WIDE,
    api_as,
    execute,
    make_script,
    shot,
    start_server,
    watch,
)
from tests.integration.server.harness import LiveServer

if not Path(CHROMIUM).exists():  # pragma: no cover - depends on the machine
    print(f"{CHROMIUM} is missing: console end-to-end tests skipped")
    pytest.skip(f"{CHROMIUM} is missing", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright

Login = Callable[..., Page]


@pytest.fixture(scope="module")
def fleet() -> Iterator[SimFleet]:
    sim = SimFleet(2, groups=("web",)).start_in_thread()
    try:
        yield sim
    finally:
        sim.stop_thread()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fleet: SimFleet) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("defects"), fleet)
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


@pytest.fixture(scope="module")
def sessions() -> dict[str, object]:
    """Each user's logged-in cookies, kept for the module: a password hash costs a
    second, and every test opens a few users' tabs."""
    return {}


@pytest.fixture
def login(browser: Browser, server: LiveServer, sessions: dict[str, object]) -> Iterator[Login]:
    """``login("vera")``: a tab logged in as that user; checked for JS, policy and 404s."""
    opened: list[tuple[object, list[str]]] = []

    def open_as(user: str, viewport: dict[str, int] = WIDE) -> Page:
        kept = sessions.get(user)
        context = browser.new_context(
            base_url=server.url,
            viewport=viewport,
            storage_state=kept,  # type: ignore[arg-type]
        )
        context.set_default_timeout(20_000)
        if kept is None:
            resp = context.request.post(
                "/api/v1/auth/login", data={"username": user, "password": PASSWORD}
            )
            assert resp.ok, resp.text()
            sessions[user] = context.storage_state()
        tab = context.new_page()
        opened.append((context, watch(tab)))
        return tab

    yield open_as
    for context, problems in opened:
        context.close()  # type: ignore[attr-defined]
        assert problems == [], problems


def refused_page(tab: Page, status: int = 403) -> None:
    """The refusal is a page in the console's layout, not the API's JSON."""
    expect(tab.locator("header.top .brand")).to_be_visible()
    expect(tab.locator("h1")).to_have_text("Not allowed" if status == 403 else "Not found")
    assert '"message"' not in tab.content()


def post_form(tab: Page, path: str, **fields: str) -> tuple[int, str]:
    """Submit a form the way the page would (with the session's CSRF token)."""
    token = tab.locator('meta[name="csrf-token"]').get_attribute("content") or ""
    resp = tab.request.post(path, form={"csrf_token": token, **fields}, max_redirects=0)
    return resp.status, resp.headers.get("content-type", "")


# -- scripts -------------------------------------------------------------------


def test_new_script_with_a_taken_name_is_refused_and_offers_the_existing_one(
    login: Login, server: LiveServer
) -> None:
    existing = make_script(server, {"name": "e2e-taken", "body": "echo original\n"})
    tab = login("otto")
    tab.goto("/scripts")
    tab.get_by_role("link", name="New script").click()
    tab.get_by_label("Name", exact=True).fill("e2e-taken")
    tab.locator("#body").fill("echo replaced\n")
    tab.get_by_role("button", name="Save").click()
    expect(tab.locator("#err-name")).to_have_text("a script named 'e2e-taken' already exists")
    expect(tab.locator("#body")).to_have_value("echo replaced\n")  # nothing typed is lost
    shot(tab, "defect-new-script-name-taken")
    tab.get_by_role("link", name="Open e2e-taken").click()
    expect(tab).to_have_url(re.compile(f"/scripts/{existing['id']}$"))
    expect(tab.locator("pre.code")).to_have_text("echo original\n")
    with api_as(server, "ada") as api:
        versions = api.get(f"/api/v1/automation/scripts/{existing['id']}/versions").json()
    assert len(versions["items"] if isinstance(versions, dict) else versions) == 1

    viewer = login("vera")
    viewer.goto("/scripts")
    expect(viewer.get_by_role("link", name="e2e-taken")).to_be_visible()
    expect(viewer.get_by_role("link", name="New script")).to_have_count(0)
    response = viewer.goto("/scripts/new")
    assert response is not None and response.status == 403
    refused_page(viewer)
    status, kind = post_form(viewer, "/scripts", name="e2e-viewer", body="echo no")
    assert (status, kind.split(";")[0]) == (403, "text/html")


def test_read_only_user_sees_only_what_they_may_do(login: Login, server: LiveServer) -> None:
    script = make_script(server, {"name": "e2e-readonly", "body": "echo 1\n"})
    make_script(server, {"name": "e2e-readonly", "body": "echo 2\n"})
    sid = script["id"]
    operator = login("otto")
    operator.goto(f"/scripts/{sid}")
    for name in ("Edit", "Execute", "Restore v1"):
        expect(
            operator.get_by_role("link", name=name, exact=True).or_(
                operator.get_by_role("button", name=name, exact=True)
            )
        ).to_be_visible()

    viewer = login("vera")
    viewer.goto(f"/scripts/{sid}")
    expect(viewer.locator("h1")).to_contain_text("e2e-readonly")
    for name in ("Edit", "Execute", "Restore v1"):
        expect(viewer.get_by_role("link", name=name, exact=True)).to_have_count(0)
        expect(viewer.get_by_role("button", name=name, exact=True)).to_have_count(0)
    viewer.goto(f"/scripts/{sid}/versions/1")
    expect(viewer.get_by_role("button", name="Restore as newest")).to_have_count(0)
    expect(viewer.get_by_role("link", name="Execute this version")).to_have_count(0)
    for path in (f"/scripts/{sid}/edit", f"/scripts/{sid}/execute"):
        response = viewer.goto(path)
        assert response is not None and response.status == 403, path
        refused_page(viewer)
        expect(viewer.locator("main")).to_contain_text("vera lacks permission scripts.manage")
    shot(viewer, "defect-forbidden-page")
    status, kind = post_form(viewer, f"/scripts/{sid}/versions/1/restore")
    assert (status, kind.split(";")[0]) == (403, "text/html")

    # Unknown console URLs are a page too; the API keeps its JSON.
    response = viewer.goto("/no/such/page")
    assert response is not None and response.status == 404
    refused_page(viewer, 404)
    shot(viewer, "defect-not-found-page")
    api = viewer.request.get("/api/v1/automation/no-such-thing")
    assert api.headers["content-type"].startswith("application/json")
    icon = viewer.request.get("/favicon.ico")
    assert icon.status == 200 and icon.headers["content-type"] == "image/x-icon"


# -- account -------------------------------------------------------------------


def test_any_user_changes_their_password_from_the_header(
    login: Login, browser: Browser, server: LiveServer
) -> None:
    from muster.server.auth import security_store

    security_store(server.app).create_user("pat", roles=["viewer"], password=PASSWORD)
    tab = login("pat")
    tab.goto("/history")
    tab.get_by_role("link", name="Change password").click()
    expect(tab).to_have_url(re.compile("/password$"))
    tab.get_by_label("Current password").fill(PASSWORD)
    tab.get_by_label("New password", exact=True).fill("amber-lantern-river-77")
    tab.get_by_label("New password again").fill("amber-lantern-river-77")
    tab.get_by_role("button", name="Change password").click()
    expect(tab).to_have_url(re.compile("/$|/scripts$"))
    # The new password works, the old one no longer does.
    with server.client(token=None) as anon:
        old = anon.post("/api/v1/auth/login", json={"username": "pat", "password": PASSWORD})
        new = anon.post(
            "/api/v1/auth/login", json={"username": "pat", "password": "amber-lantern-river-77"}
        )
    assert (old.status_code, new.status_code) == (401, 200)
    # Without a login the page is not served: the browser is sent to log in.
    anon_context = browser.new_context(base_url=server.url)
    try:
        page = anon_context.new_page()
        page.goto("/password")
        expect(page).to_have_url(re.compile(r"/login\?next=%2Fpassword$"))
    finally:
        anon_context.close()


# -- approvals -----------------------------------------------------------------


def test_a_run_pending_approval_can_be_decided_on_its_page(
    login: Login, server: LiveServer
) -> None:
    script = make_script(server, {"name": "e2e-guarded", "body": "echo approved-run\n"})
    with api_as(server, "ada") as api:
        resp = api.put(
            f"/api/v1/automation/scripts/{script['id']}/approval-policy", json={"required": True}
        )
        assert resp.status_code == 200, resp.text
    started = execute(server, script["id"], ["web"], user="otto")
    url = f"/executions/{started['id']}"

    requester = login("otto")
    requester.goto(url)
    expect(requester.locator("#status")).to_have_text("pending approval")
    panel = requester.locator("#approval")
    expect(panel).to_contain_text("0 of 1")
    expect(panel).to_contain_text("role approver")
    expect(requester.locator("#approval-hint")).to_contain_text("you asked for this run")
    expect(panel.get_by_role("button", name="Approve")).to_have_count(0)
    shot(requester, "defect-pending-approval-requester")

    viewer = login("vera")
    viewer.goto(url)
    expect(viewer.locator("#approval-hint")).to_contain_text("lack the approvals.decide")
    expect(viewer.get_by_role("button", name="Approve")).to_have_count(0)
    status, kind = post_form(viewer, f"{url}/approve")
    assert (status, kind.split(";")[0]) == (403, "text/html")

    approver = login("apo")
    approver.goto(url)
    approver.get_by_label("Reason (optional)").fill("checked the change")
    shot(approver, "defect-pending-approval-approver")
    approver.get_by_role("button", name="Approve").click()
    expect(approver.locator("#status")).to_have_text("succeeded")
    expect(approver.locator("#approval")).to_have_count(0)

    # Reject, with a reason, ends the wait as well.
    second = execute(server, script["id"], ["sim0001"], user="otto")
    approver.goto(f"/executions/{second['id']}")
    approver.get_by_label("Reason (optional)").fill("not today")
    approver.get_by_role("button", name="Reject").click()
    expect(approver.locator("#status")).to_have_text("rejected")


# -- the execute form ----------------------------------------------------------

FORM_BODY = 'echo "${count} ${flag} ${colour}"\necho "token=${token}"\n'
FORM_PARAMS = [
    {"name": "count", "type": "integer", "required": True},
    {"name": "token", "type": "secret", "required": True},
    {"name": "flag", "type": "boolean", "default": True},
    {"name": "colour", "type": "choice", "choices": ["red", "blue"], "default": "blue"},
]


def test_execute_form_reports_every_problem_once_and_keeps_what_was_typed(
    login: Login, server: LiveServer
) -> None:
    script = make_script(server, {"name": "e2e-form", "body": FORM_BODY, "parameters": FORM_PARAMS})
    tab = login("otto")
    tab.goto(f"/scripts/{script['id']}/execute")
    targets = tab.get_by_label(re.compile("Host names, groups"))
    expect(targets).to_have_value("")  # the server's own machine is never pre-selected
    expect(tab.get_by_label("flag")).to_be_checked()
    expect(tab.locator("#param-colour")).to_have_value("blue")
    targets.fill("no-such-host")
    tab.locator("#param-count").fill("12abc")
    tab.locator("#param-token").fill("s3cret-value")
    tab.get_by_role("button", name="Execute").click()
    expect(tab.locator(".banner.bad")).to_have_text(
        "Nothing was started: fix the 2 fields marked below."
    )
    expect(tab.locator("#err-targets")).to_contain_text("no-such-host")
    assert tab.locator("main").inner_text().count("matching nothing") == 1
    expect(tab.locator("#err-count")).to_contain_text("expected an integer")
    expect(tab.locator("#param-count")).to_have_value("12abc")
    expect(tab.locator("#param-token")).to_have_value("")
    expect(tab.locator("#cleared-param-token")).to_contain_text("Enter it again")
    assert "s3cret-value" not in tab.content()
    shot(tab, "defect-execute-form-errors")

    # `*` reaches the server's own machine: refused for an operator, naming it.
    targets.fill("*")
    tab.locator("#param-count").fill("2")
    tab.locator("#param-token").fill("s3cret-value")
    tab.get_by_role("button", name="Execute").click()
    expect(tab.locator("#err-targets")).to_contain_text("localhost")
    targets.fill("web")
    tab.locator("#param-token").fill("s3cret-value")
    tab.get_by_role("button", name="Execute").click()
    expect(tab.locator("#status")).to_have_text("succeeded")
    expect(tab.locator(".params-shown")).to_contain_text("flagtrue")
    expect(tab.locator(".params-shown")).not_to_contain_text("True")

    viewer = login("vera")
    viewer.goto("/scripts")
    row = viewer.locator("#scripts tr", has_text="e2e-form")
    expect(row.get_by_role("link", name="Execute")).to_have_count(0)
    status, kind = post_form(viewer, f"/scripts/{script['id']}/execute", targets="web")
    assert (status, kind.split(";")[0]) == (403, "text/html")


def test_script_form_picks_boolean_and_choice_defaults(login: Login) -> None:
    tab = login("otto")
    tab.goto("/scripts/new")
    tab.get_by_label("Name", exact=True).fill("e2e-defaults")
    tab.locator("#body").fill("echo ${dry} ${size}\n")
    tab.locator("#p0_name").fill("dry")
    tab.locator("#p0_type").select_option("boolean")
    default = tab.locator("#p0_default")
    expect(default.locator("option")).to_have_text(["(no default)", "true", "false"])
    default.select_option("true")
    tab.get_by_role("button", name="Add parameter").click()
    tab.locator("#p1_name").fill("size")
    tab.locator("#p1_type").select_option("choice")
    tab.locator("#p1_choices").fill("small, large")
    tab.locator("#p1_choices").blur()
    expect(tab.locator("#p1_default option")).to_have_text(["(no default)", "small", "large"])
    tab.locator("#p1_default").select_option("large")
    shot(tab, "defect-script-form-defaults")
    tab.get_by_role("button", name="Save").click()
    expect(tab.get_by_role("status")).to_have_text("Saved as version 1.")
    rows = tab.locator("table.list").first.locator("tbody tr")
    expect(rows.nth(0)).to_contain_text("true")
    expect(rows.nth(0)).not_to_contain_text("True")
    expect(rows.nth(1)).to_contain_text("large")
    # Editing shows the stored defaults in the same pickers.
    tab.get_by_role("link", name="Edit").click()
    expect(tab.locator("#p0_default")).to_have_value("true")
    expect(tab.locator("#p1_default")).to_have_value("large")

    viewer = login("vera")
    viewer.goto(tab.url.removesuffix("/edit"))
    expect(viewer.locator("table.list").first.locator("tbody tr").nth(0)).to_contain_text("true")
    expect(viewer.get_by_role("link", name="Edit")).to_have_count(0)
    response = viewer.goto(tab.url)
    assert response is not None and response.status == 403
    refused_page(viewer)


# -- diff ----------------------------------------------------------------------


def test_diff_shows_a_changed_default_and_timeouts_in_seconds(
    login: Login, server: LiveServer
) -> None:
    body = "echo ${n}\n"
    first = make_script(
        server,
        {
            "name": "e2e-diffmeta",
            "body": body,
            "timeout": 120,
            "parameters": [{"name": "n", "type": "integer", "default": 5}],
        },
    )
    make_script(
        server,
        {
            "name": "e2e-diffmeta",
            "body": body,
            "timeout": 90,
            "parameters": [{"name": "n", "type": "integer", "default": 7}],
        },
    )
    tab = login("vera")
    tab.goto(f"/scripts/{first['id']}/diff?a=1&b=2")
    expect(tab.locator("#diff-summary")).to_have_text(
        "Body: no line differs; settings: 2 changes (below)."
    )
    changes = tab.locator("#setting-changes tbody tr")
    expect(changes.filter(has_text="parameter n: default")).to_contain_text("57")
    expect(changes.filter(has_text="timeout (seconds)")).to_contain_text("12090")
    assert "120.0" not in tab.locator("main").inner_text()
    shot(tab, "defect-diff-settings")
    tab.goto(f"/scripts/{first['id']}/versions/1")
    expect(tab.locator(".meta")).to_contain_text("timeout 120 s")

    stranger = login("nobody")
    response = stranger.goto(f"/scripts/{first['id']}/diff?a=1&b=2")
    assert response is not None and response.status == 403
    refused_page(stranger)


# -- live view -----------------------------------------------------------------


def test_cancel_asks_first_then_shows_cancelling_and_groups_cancelled_hosts(
    login: Login, server: LiveServer, tmp_path: Path
) -> None:
    started_flag = tmp_path / "started"
    script = make_script(
        server,
        {
            "name": "e2e-cancel",
            # Deaf to SIGTERM: the local transport needs its SIGKILL after the
            # grace, so the cancel is under way for a while that the page must show.
            "body": f"trap '' TERM\ntouch '{started_flag}'\n"
            + 'i=0; while [ $i -lt 600 ]; do echo "tick $i $$"; i=$((i+1)); sleep 0.1; done\n',
        },
    )
    started = execute(server, script["id"], ["web", "localhost"])
    url = f"/executions/{started['id']}"

    viewer = login("vera")
    viewer.goto(url)
    expect(viewer.get_by_role("button", name="Cancel")).to_have_count(0)
    status, kind = post_form(viewer, f"{url}/cancel")
    assert (status, kind.split(";")[0]) == (403, "text/html")

    tab = login("otto")
    tab.goto(url)
    expect(tab.locator("#status")).to_have_text("running")
    bar = tab.get_by_role("progressbar", name="Progress of the execution")
    expect(bar).to_have_class(re.compile(r"\bs-running\b"))
    tab.get_by_role("button", name="Cancel").click()
    # Nothing is stopped by the first click: the page asks.
    expect(tab.get_by_text("Stop every host of this execution?")).to_be_visible()
    tab.get_by_role("button", name="Keep running").click()
    expect(tab.get_by_role("button", name="Yes, cancel it")).to_be_hidden()
    expect(tab.locator("#status")).to_have_text("running")
    tab.get_by_role("button", name="Cancel").click()
    tab.get_by_role("button", name="Yes, cancel it").click()
    expect(tab.locator("#status")).to_have_text("cancelling")
    expect(bar).to_have_class(re.compile(r"\bs-cancelling\b"))
    expect(tab.get_by_role("button", name="Cancel")).to_be_hidden()
    expect(tab.locator("#status")).to_have_text("cancelled")
    groups = tab.locator("#groups li")
    expect(groups).to_have_count(1)
    expect(groups.first).to_contain_text(re.compile("^3 hosts: cancelled"))
    expect(bar).to_have_class(re.compile(r"\bs-cancelled\b"))
    expect(tab.get_by_role("button", name="Cancel")).to_be_hidden()
    shot(tab, "defect-cancelled-execution")


def test_rerun_hosts_attempts_exit_code_and_one_host_groups(
    login: Login, server: LiveServer
) -> None:
    script = make_script(
        server,
        {
            "name": "e2e-rerun",
            "body": 'if [ "${MUSTER_SIM_HOST:-local}" = sim0002 ]; then\n'
            '  echo "attempt output" >&2; exit 3\nfi\necho fine\n',
        },
    )
    started = execute(server, script["id"], ["web"])
    url = f"/executions/{started['id']}"

    viewer = login("vera")
    viewer.goto(url)
    expect(viewer.locator("#status")).to_have_text("failed")
    expect(viewer.get_by_role("button", name="Re-run failed hosts")).to_have_count(0)
    status, kind = post_form(viewer, f"{url}/retry")
    assert (status, kind.split(";")[0]) == (403, "text/html")

    tab = login("otto")
    tab.goto(url)
    expect(tab.locator("#status")).to_have_text("failed")
    groups = tab.locator("#groups li")
    expect(groups).to_have_count(2)
    expect(groups.nth(0)).to_contain_text("1 host: exit 0")
    expect(groups.nth(0)).not_to_contain_text("same output")
    expect(groups.nth(1)).to_contain_text("1 host: exit 3, 'attempt output'")
    expect(tab.get_by_role("progressbar")).to_have_class(re.compile(r"\bs-failed\b"))
    tab.locator('#grid .cell[data-host="sim0002"]').click()
    meta = tab.locator("#panel-meta")
    expect(meta).to_contain_text("exit 3")
    expect(meta).not_to_contain_text("exit code")  # the exit code is said once

    tab.get_by_role("button", name="Re-run failed hosts").click()
    expect(tab.locator("#status")).to_have_text("failed")
    # The re-run hosts are what the page shows after the re-run, whatever they are doing now.
    expect(tab.locator("#grid .cell")).to_have_count(1)
    expect(tab.locator("#grid .cell")).to_have_attribute("data-host", "sim0002")
    shot(tab, "defect-rerun-filter")
    tab.locator('#grid .cell[data-host="sim0002"]').click()
    expect(meta).to_contain_text("attempt 2")
    tab.get_by_role("button", name="Show attempt 1").click()
    expect(meta).to_contain_text("attempt 1")
    expect(tab.locator("#panel-stderr")).to_have_text("attempt output\n")
    shot(tab, "defect-first-attempt-output")
    tab.get_by_role("button", name="Show the newest attempt").click()
    expect(meta).to_contain_text("attempt 2")


# -- history -------------------------------------------------------------------


def test_history_filters_by_group_and_partial_names_with_where_and_duration(
    login: Login, server: LiveServer
) -> None:
    script = make_script(server, {"name": "e2e-history-partial", "body": "echo h\n"})
    done = execute(server, script["id"], ["web"])
    tab = login("vera")
    tab.goto(f"/executions/{done['id']}")
    expect(tab.locator("#status")).to_have_text("succeeded")
    tab.goto("/history?host=web&script=history-part")
    rows = tab.locator("#history tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator('[data-label="Where"]')).to_have_text("sim0001, sim0002")
    expect(rows.first.locator('[data-label="Took"]')).to_have_text(re.compile(r"^\d+\.\ds$"))
    tab.goto("/history?host=sim000&script=E2E-HISTORY")
    expect(rows).to_have_count(1)
    tab.goto("/history?host=nowhere")
    expect(tab.locator("#err-host")).to_contain_text("no host or group named 'nowhere'")
    shot(tab, "defect-history-filters")

    stranger = login("nobody")
    response = stranger.goto("/history?host=web")
    assert response is not None and response.status == 403
    refused_page(stranger)


# -- phone width ---------------------------------------------------------------


@pytest.mark.parametrize("path", ["/scripts", "/hosts", "/history"])
def test_tables_fit_a_phone_without_sideways_scrolling(login: Login, path: str) -> None:
    tab = login("ada", PHONE)
    tab.goto(path)
    expect(tab.locator("table.list").first).to_be_visible()
    overflow = tab.evaluate(
        """() => {
          const page = document.documentElement.scrollWidth - window.innerWidth;
          const tables = [...document.querySelectorAll('.table-wrap')]
            .map((w) => w.scrollWidth - w.clientWidth);
          return Math.max(page, ...tables);
        }"""
    )
    assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at 390px"
