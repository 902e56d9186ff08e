"""A secret parameter is never in clear anywhere we keep or send anything.

A script echoes a ``secret`` value to stdout, stderr and an ``@@`` event on
two hosts served by a real sshd. Then the whole database (the SQLite file
and its WAL as bytes, and every row of every table on SQLite or
PostgreSQL), everything the server logged or printed, every API response,
the SSE stream and every webhook body are searched for it: zero hits, and
the captured output shows ``***`` where it was.
"""

from __future__ import annotations

import base64
import logging
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import MetaData, select, text

from tests.integration.server.harness import wait_for
from tests.integration.server.helpers import save_script, wait_terminal
from tests.integration.server.sshd_server import SshdApi, sshd_api  # noqa: F401

# autouse: the receiver listens on 127.0.0.1, which webhooks may target only when allowed
from tests.integration.server.test_webhooks_api import Receiver, allow_loopback_webhooks  # noqa: F401

BODY = """\
echo "out: ${token} for ${who}"
echo "err: $token" >&2
printf '@@{"leak": "%s"}\\n' "$token"
printf %s ${token} | base64
printf %s ${token} | od -An -tx1 | tr -d ' \\n' | tr a-f A-F; echo
printf 'Basic %s\\n' "$(printf 'ops:%s' ${token} | base64 -w0)"
"""


def encoded_forms(secret: str) -> dict[str, bytes]:
    """The clear value and the encodings a script most often prints it in."""
    raw = secret.encode()
    return {
        "clear": raw,
        "base64": base64.b64encode(raw),
        "hex": raw.hex().upper().encode(),
        # base64 of "ops:<secret>": the secret at another alignment; its middle is fixed.
        "basic-auth": base64.b64encode(b"ops:" + raw)[8:-8],
    }


@pytest.fixture
def receiver() -> Any:
    r = Receiver(fail_first=0)
    r.thread.start()
    try:
        yield r
    finally:
        r.httpd.shutdown()
        r.httpd.server_close()


def _database_dump(sshd: SshdApi) -> tuple[bytes, str]:
    """(raw database bytes where we can read them, a text dump of every row)."""
    engine = sshd.server.ctx.store.engine
    raw = b""
    if engine.dialect.name == "sqlite":
        path = Path(str(engine.url.database))
        for f in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            if f.exists():
                raw += f.read_bytes()
    meta = MetaData()
    meta.reflect(engine)
    rows: list[str] = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            if engine.dialect.name == "postgresql":
                # Every column of every row as PostgreSQL prints it.
                q = text(f'SELECT t::text FROM "{table.name}" AS t')
                rows.extend(str(r[0]) for r in conn.execute(q))
            else:
                rows.extend(repr(tuple(r)) for r in conn.execute(select(table)))
    assert rows, "the dump is empty: nothing was searched"
    return raw, "\n".join(rows)


def test_secret_parameter_is_nowhere_in_clear(
    sshd_api: SshdApi,  # noqa: F811
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    # A plain value beside it: proves every place searched does hold parameters.
    visible = f"visible-{uuid.uuid4().hex}"
    api = sshd_api.api
    seen: list[bytes] = []

    def keep(resp: httpx.Response) -> None:
        resp.read()
        seen.append(resp.content)
        seen.append(str(resp.headers).encode())

    api.event_hooks["response"] = [keep]
    hook = api.post(
        "/api/v1/webhooks", json={"url": receiver.url, "secret": "whsec-abcdefgh", "events": ["*"]}
    )
    assert hook.status_code == 201, hook.text
    script = save_script(
        api,
        name="echo-secret",
        body=BODY,
        parameters=[
            {"name": "token", "type": "secret", "required": True},
            {"name": "who", "type": "string", "default": "ops"},
        ],
    )
    started = api.post(
        f"/api/v1/automation/scripts/{script['id']}/execute",
        json={
            "host_ids": list(sshd_api.hosts),
            "parameter_values": {"token": secret, "who": visible},
        },
    )
    assert started.status_code == 201, started.text
    eid = started.json()["id"]

    stream = b""
    with api.stream("GET", f"/api/v1/automation/executions/{eid}/stream", timeout=60) as resp:
        assert resp.status_code == 200
        for chunk in resp.iter_bytes():
            stream += chunk
            if b"event: end" in stream:
                break
    done = wait_terminal(api, eid)
    assert done["status"] == "succeeded", done
    for host in done["hosts"]:
        assert host["stdout_tail"].startswith(f"out: *** for {visible}\n"), host
        log = api.get(f"/api/v1/automation/executions/{eid}/hosts/{host['host']}/log")
        assert f"out: *** for {visible}" in log.text
        for stream_name in ("stdout", "stderr"):
            api.get(
                f"/api/v1/automation/executions/{eid}/hosts/{host['host']}/log",
                params={"stream": stream_name},
            )
    assert f"out: *** for {visible}".encode() in stream

    # Every read a client might make.
    for path in (
        "/api/v1/automation/executions",
        f"/api/v1/automation/executions/{eid}",
        "/api/v1/automation/scripts",
        f"/api/v1/automation/scripts/{script['id']}",
        f"/api/v1/automation/scripts/{script['id']}/versions",
        "/api/v1/hosts",
        "/api/v1/credentials",
        "/api/v1/audit",
        "/api/v1/audit?action=execution.create",
        "/api/v1/automation/approvals",
        "/api/v1/webhooks",
        f"/api/v1/webhooks/{hook.json()['id']}/deliveries",
        "/api/v1/workers",
        "/metrics",
        "/openapi.json",
    ):
        assert api.get(path).status_code == 200, path
    audit = api.get("/api/v1/audit?action=execution.create").json()["items"]
    assert audit[0]["details"]["parameters"]["token"] == "***"
    assert audit[0]["details"]["content_hash"] == started.json()["content_hash"]

    def delivered() -> bool:
        return any(e["event"] == "execution.succeeded" for e in receiver.events())

    wait_for(delivered, timeout=30, what="the final webhook")

    raw, rows = _database_dump(sshd_api)
    assert visible in rows and any(visible.encode() in body for body in seen)
    if sshd_api.server.ctx.store.engine.dialect.name == "sqlite":
        assert visible.encode() in raw, "the raw file search would not find a clear value"
    assert receiver.accepted, "no webhook bodies were searched"
    out, err = capfd.readouterr()
    for form, needle in encoded_forms(secret).items():
        text_needle = needle.decode()
        assert needle not in raw, f"secret ({form}) in the database file"
        assert text_needle not in rows, f"secret ({form}) in a database row"
        assert all(needle not in body for body in seen), f"secret ({form}) in an API response"
        assert needle not in stream, f"secret ({form}) in the SSE stream"
        assert all(needle not in body for _, body in receiver.accepted), (
            f"secret ({form}) in a webhook"
        )
        assert text_needle not in caplog.text, f"secret ({form}) in the server log"
        assert text_needle not in out and text_needle not in err, (
            f"secret ({form}) printed by the server"
        )
