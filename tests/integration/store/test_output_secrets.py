"""Output is capped with a stated truncation; secrets never reach a table in clear."""

from __future__ import annotations

import pytest

from muster.domain.params import ParameterSpec
from muster.domain.scripts import ScriptVersion
from muster.domain.secret import Secret
from muster.security.vault import VaultError
from muster.store.base import ExecutionKind, NewExecution
from muster.store.sqlalchemy_store import SqlStore

from .conftest import dump_everything, make_hosts, script_execution


def _running(store):
    script_execution(store, make_hosts(store, 1))
    [c] = store.claim_host_runs("w", 1, 30)
    store.mark_started(c.id, "w", c.epoch)
    return c


def test_output_is_stored_in_order_with_resumable_ids(store):
    c = _running(store)
    for i in range(5):
        assert store.append_output(c.id, "w", c.epoch, "stdout" if i % 2 else "stderr", f"l{i}\n")
    chunks = store.read_output(run_id=c.id)
    assert [x.data for x in chunks] == [f"l{i}\n" for i in range(5)]
    assert [x.seq for x in chunks] == [1, 2, 3, 4, 5]
    after = store.read_output(execution_id=c.execution.id, after_id=chunks[2].id)
    assert [x.data for x in after] == ["l3\n", "l4\n"]
    run = store.get_host_run(c.id)
    assert run.stdout_tail == "l1\nl3\n" and run.stderr_tail == "l0\nl2\nl4\n"


def test_cap_truncates_with_a_marker_and_a_record_never_silently(store):
    c = _running(store)  # the fixture's cap is 1000 bytes
    assert store.append_output(c.id, "w", c.epoch, "stdout", "a" * 600)
    assert store.append_output(c.id, "w", c.epoch, "stdout", "é" * 300)  # 600 bytes, cut mid-way
    assert store.append_output(c.id, "w", c.epoch, "stderr", "late error\n")
    assert store.append_output(c.id, "w", c.epoch, "stdout", "x" * 5000, dropped_bytes=7)
    run = store.get_host_run(c.id)
    assert run.stdout_truncated and run.stderr_truncated
    assert run.stored_bytes == 1000
    assert run.stdout_bytes == 600 + 600 + 5000 + 7 and run.stderr_bytes == 11
    assert run.stdout_tail.endswith("x" * 100) and len(run.stdout_tail) <= 4096
    assert run.stderr_tail == "late error\n"  # tails keep moving past the cap
    chunks = list(store.iter_output(c.id))
    stored = "".join(x.data for x in chunks if "[muster:" not in x.data)
    assert len(stored.encode()) == 1000 and stored.endswith("é")  # cut on a character boundary
    markers = [x for x in chunks if "[muster:" in x.data]
    assert [m.stream for m in markers] == ["stdout", "stderr"]  # one marker per stream, once
    assert "cap of 1000 bytes" in markers[0].data


def test_output_from_a_worker_that_lost_the_run_is_refused(store, clock):
    c = _running(store)
    store.finish_host_run(
        c.id, "w", c.epoch, __import__("muster").domain.states.HostRunState.SUCCEEDED
    )
    assert not store.append_output(c.id, "w", c.epoch, "stdout", "too late")
    assert store.read_output(run_id=c.id) == []


def test_iter_output_pages_through_everything(store):
    c = _running(store)
    store.output_cap_bytes = 10**7
    for i in range(1203):
        store.append_output(c.id, "w", c.epoch, "stdout", f"{i}\n")
    got = [x.data for x in store.iter_output(c.id)]
    assert got == [f"{i}\n" for i in range(1203)]


def test_secret_values_are_never_stored_in_clear(store):
    secret = "hunter2-Sup3r-S3cret"
    saved = store.save_script(
        ScriptVersion(
            name="pw",
            shell="bash",
            body='echo "$MUSTER_PARAM_PW"',
            parameters=(ParameterSpec("pw", type="secret"), ParameterSpec("user")),
        )
    )
    hosts = make_hosts(store, 2)
    ex = store.create_execution(
        NewExecution(
            kind=ExecutionKind.SCRIPT,
            targets=hosts,
            timeout=30,
            script_id=saved.script.id,
            script_version=1,
            content_hash=saved.version.content_hash,
            parameters={"pw": Secret(secret), "user": "ann"},
        )
    )
    assert ex.parameters == {"pw": "***", "user": "ann"} and ex.secret_fields == ("pw",)
    claims = store.claim_host_runs("w", 5, 30)
    assert {c.values["pw"].reveal() for c in claims} == {secret}  # the worker gets it
    dump = dump_everything(store)
    assert secret not in dump and "ann" in dump  # the dump really holds the rows


def test_sealed_secret_is_bound_to_its_execution(vault):
    from muster.store._executions import secret_aad

    token = vault.seal("s3cret", secret_aad("e1", "pw"))
    assert vault.open(token, secret_aad("e1", "pw")) == "s3cret"
    with pytest.raises(VaultError):
        vault.open(token, secret_aad("e2", "pw"))


def test_no_key_means_no_secret_is_stored(engine, clock):
    keyless = SqlStore(engine, vault=None, clock=clock)
    hosts = make_hosts(keyless, 1)
    with pytest.raises(VaultError, match="no secret key"):
        keyless.create_execution(
            NewExecution(
                kind=ExecutionKind.COMMAND,
                targets=hosts,
                timeout=5,
                command="true",
                parameters={"pw": Secret("zzz-secret")},
            )
        )
    assert keyless.list_executions().total == 0
    assert "zzz-secret" not in dump_everything(keyless)
