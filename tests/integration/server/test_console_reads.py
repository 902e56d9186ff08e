"""The console's pages read through the Store's console reads (no engine in the
web layer): hosts list and search, one host's recent runs, the execute form's
picker, the execution view and its batched summary, over real HTTP."""

from __future__ import annotations

import httpx

from muster.testing.simfleet import SimFleet
from tests.integration.server.conftest import register_fleet
from tests.integration.server.helpers import save_script, wait_terminal


def test_console_pages_show_what_the_store_holds(api: httpx.Client, fleet: SimFleet) -> None:
    names = register_fleet(api, fleet)
    script = save_script(api, name="same", body="echo same-everywhere\n")
    eid = api.post(
        f"/api/v1/automation/scripts/{script['id']}/execute", json={"host_ids": names}
    ).json()["id"]
    assert wait_terminal(api, eid)["status"] == "succeeded"

    found = api.get("/hosts", params={"q": names[0]})
    assert found.status_code == 200, found.text
    assert names[0] in found.text and names[1] not in found.text
    host = api.get(f"/hosts/{names[0]}")
    assert host.status_code == 200 and "same" in host.text

    form = api.get(f"/scripts/{script['id']}/execute")
    assert form.status_code == 200 and names[-1] in form.text  # the picker's host names

    summary = api.get(f"/ui/executions/{eid}/summary").json()
    assert summary["total"] == summary["done"] == len(names)
    assert summary["progress"] == 100 and summary["terminal"] is True
    assert [g["count"] for g in summary["groups"]] == [len(names)]  # one identical result
    cells = summary["grid"]["cells"]
    assert sorted(c[1] for c in cells) == sorted(names)
    failed = api.get(f"/ui/executions/{eid}/summary", params={"filter": "failed"}).json()
    assert failed["grid"]["cells"] == [] and failed["grid"]["total"] == 0

    view = api.get(f"/executions/{eid}")
    assert view.status_code == 200 and "same" in view.text
    missing_run = api.get(f"/ui/executions/{eid}/runs/no-such-run/output")
    assert missing_run.status_code == 404
    missing = api.get("/ui/executions/no-such-execution/summary")
    assert missing.status_code == 404
