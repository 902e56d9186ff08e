"""Live output over SSE: arrives before the end, resumes with Last-Event-ID exactly once."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.integration.server.helpers import save_script
from tests.integration.server.sse_client import SseEvent, stream

BODY = """\
echo first
echo oops >&2
while [ ! -e {flag} ]; do sleep 0.05; done
echo '@@{{"progress": 100, "phase": "done"}}'
echo last
"""


def test_live_output_then_resume(api: httpx.Client, tmp_path: Path) -> None:
    flag = tmp_path / "go"
    script = save_script(api, name="live", body=BODY.format(flag=flag))
    eid = api.post(
        f"/api/v1/automation/scripts/{script['id']}/execute", json={"host_ids": ["localhost"]}
    ).json()["id"]

    seen: list[SseEvent] = []
    for ev in stream(api, eid):
        seen.append(ev)
        if ev.event == "output" and "first" in ev.data["data"]:
            # Live: the host is still blocked on the flag, so it cannot have finished.
            status = api.get(f"/api/v1/automation/executions/{eid}").json()["status"]
            assert status in ("queued", "running")
            flag.write_text("")
        if ev.event == "end":
            break
    kinds = [e.event for e in seen]
    assert kinds[-1] == "end" and seen[-1].data["status"] == "succeeded"
    outputs = [e for e in seen if e.event == "output"]
    text = "".join(e.data["data"] for e in outputs if e.data["stream"] == "stdout")
    assert text.startswith("first\n") and text.endswith("last\n")
    assert "".join(e.data["data"] for e in outputs if e.data["stream"] == "stderr") == "oops\n"
    assert all(e.data["host"] == "localhost" for e in outputs)
    events = [e for e in seen if e.event == "event"]
    assert [e.data["data"] for e in events] == [{"progress": 100, "phase": "done"}]
    states = [e.data["state"] for e in seen if e.event == "state"]
    assert states[-1] == "succeeded" and seen[-2].event in ("state", "output")
    ids = [e.id for e in seen if e.id is not None]
    assert ids == sorted(ids) and all(e.id is not None for e in seen)

    # Resume after the first output event: everything later, once; nothing earlier.
    first = outputs[0]
    resumed = list(stream(api, eid, last_event_id=first.id))
    again = [e for e in resumed if e.event == "output"]
    assert [(e.id, e.data) for e in again] == [(e.id, e.data) for e in outputs[1:]]
    assert resumed[-1].event == "end"
    # Resuming at the very end replays no output, only the final state and the end.
    tail = list(stream(api, eid, last_event_id=outputs[-1].id))
    assert [e.event for e in tail if e.event == "output"] == []
    assert tail[-1].event == "end"


def test_stream_of_unknown_execution_is_404(api: httpx.Client) -> None:
    resp = api.get("/api/v1/automation/executions/nope/stream")
    assert resp.status_code == 404
    bad = api.get("/api/v1/automation/executions/nope/stream", headers={"Last-Event-ID": "x"})
    assert bad.status_code in (404, 422)
