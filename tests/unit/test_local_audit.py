"""The local audit file: chained like the server's audit, tampering found and the
broken line named, two writing processes never fork the chain, and a write that
fails is reported on the host instead of being lost."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
from pathlib import Path

import pytest

from muster.domain.hosts import Host
from muster.domain.plans import Plan, PlanCommand, PlanFile
from muster.domain.secret import Secret
from muster.domain.states import FailureReason, HostRunState
from muster.engine.local_audit import (
    AuditedTransport,
    AuditWriteError,
    LocalAuditLog,
    default_audit_path,
    key_path_for,
    open_audit,
    verify_file,
)
from muster.security.audit import AuditKeyError
from muster.transports.base import OutputSink, Stream, TransportOutcome


class _Echo:
    """Unit-test stand-in for a transport: reports success with exit code 0."""

    def __init__(self, outcome: TransportOutcome | None = None) -> None:
        self.ran: list[str] = []
        self.outcome = outcome or TransportOutcome(HostRunState.SUCCEEDED, exit_code=0)

    async def run_plan(self, host: Host, plan: Plan, sink: OutputSink) -> TransportOutcome:
        self.ran.append(host.name)
        sink(Stream.STDOUT, "hi\n")
        return self.outcome

    async def close(self) -> None:
        return None


def _fill(path: Path, n: int) -> None:
    log = LocalAuditLog(path, actor="alice")
    for i in range(n):
        log.append("host.run.end", f"web{i}", None, {"i": i})
    log.close()


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_records_chain_and_verify(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _fill(path, 3)
    assert verify_file(path).ok and verify_file(path).checked == 3
    rows = _lines(path)
    assert [r["seq"] for r in rows] == [1, 2, 3]
    assert rows[1]["prev_hash"] == rows[0]["hash"]
    assert (key_path_for(path).stat().st_mode & 0o777) == 0o600
    assert (path.stat().st_mode & 0o777) == 0o600


@pytest.mark.parametrize(
    ("edit", "line", "problem"),
    [
        (lambda rows: rows[1]["details"].update(i=99), 2, "HMAC does not match"),
        (lambda rows: rows.pop(1), 2, "records missing"),
        (lambda rows: rows.insert(0, rows.pop(2)), 1, "expected seq 1"),
    ],
    ids=["edited", "removed", "reordered"],
)
def test_tampering_names_the_first_broken_line(
    tmp_path: Path, edit: object, line: int, problem: str
) -> None:
    path = tmp_path / "audit.jsonl"
    _fill(path, 4)
    rows = _lines(path)
    edit(rows)  # type: ignore[operator]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = verify_file(path)
    assert not result.ok
    assert result.first_bad_line == line
    assert problem in str(result.problem)


def test_a_line_that_is_not_a_record_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _fill(path, 2)
    with path.open("a") as fh:
        fh.write('{"seq": 3, "torn\n')
    result = verify_file(path)
    assert (result.ok, result.first_bad_line, result.checked) == (False, 3, 2)
    # ...and nothing can be appended after it: the chain cannot be continued.
    with pytest.raises(AuditWriteError, match="last line is not an audit record"):
        LocalAuditLog(path).append("x", "y", None, {})


def test_a_rebuilt_chain_without_the_key_fails(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _fill(path, 2)
    other = tmp_path / "other.jsonl"
    _fill(other, 2)  # another key
    result = verify_file(path, key_path_for(other))
    assert not result.ok and result.first_bad_line == 1


def _writer(path: str, n: int, name: str) -> None:
    log = LocalAuditLog(Path(path), actor=name)
    for i in range(n):
        log.append("host.run.end", f"{name}-{i}", None, {"i": i})
    log.close()


def test_two_processes_writing_at_once_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(path), 150, f"p{i}")) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    result = verify_file(path)
    assert result.ok, result.problem
    assert result.checked == 300
    assert {r["actor"] for r in _lines(path)} == {"p0", "p1"}


def test_default_path_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MUSTER_AUDIT_FILE")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_audit_path() == tmp_path / "state" / "muster" / "audit.jsonl"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_audit_path() == tmp_path / ".local" / "state" / "muster" / "audit.jsonl"
    monkeypatch.setenv("MUSTER_AUDIT_FILE", str(tmp_path / "x.jsonl"))
    assert default_audit_path() == tmp_path / "x.jsonl"
    assert open_audit(False) is None


def test_an_unopenable_file_refuses_the_run(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(AuditWriteError, match="cannot open"):
        open_audit(blocker / "audit.jsonl")


_HOST = Host("web1", address="10.0.0.5")


def _plan() -> Plan:
    return Plan(
        files=(PlanFile("/tmp/s.sh", "echo $TOKEN\n"),),
        commands=(PlanCommand(("/bin/sh", "/tmp/s.sh", "--token=s3cr3t-value"), 5),),
        env={"TOKEN": Secret("s3cr3t-value")},
    )


def test_the_transport_records_start_and_end_with_secrets_masked(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = LocalAuditLog(path, actor="alice")
    inner = _Echo(TransportOutcome(HostRunState.FAILED, 3, FailureReason.COMMAND_FAILED))
    seen: list[str] = []
    outcome = asyncio.run(
        AuditedTransport(inner, log).run_plan(_HOST, _plan(), lambda s, t: seen.append(t))
    )
    assert outcome.exit_code == 3 and seen == ["hi\n"]
    start, end = _lines(path)
    assert (start["action"], end["action"]) == ("host.run.start", "host.run.end")
    assert (end["actor"], end["target"], end["address"]) == ("alice", "web1", "10.0.0.5")
    details = end["details"]
    assert isinstance(details, dict)
    assert details["outcome"] == "failed" and details["exit_code"] == 3
    assert details["reason"] == "command_failed"
    assert details["started"] <= details["ended"]
    assert len(details["scripts"][0]["sha256"]) == 64
    assert "s3cr3t-value" not in path.read_text()
    assert verify_file(path).ok


def test_a_start_that_cannot_be_recorded_never_runs(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = LocalAuditLog(path)
    os.close(log._fd)
    log._fd = os.open(tmp_path / "ro", os.O_RDONLY | os.O_CREAT, 0o600)
    inner = _Echo()
    outcome = asyncio.run(AuditedTransport(inner, log).run_plan(_HOST, _plan(), lambda s, t: None))
    assert inner.ran == []
    assert outcome.state is HostRunState.FAILED
    assert outcome.reason is FailureReason.TRANSPORT_ERROR and not outcome.started
    assert "not run: the local audit could not record its start" in outcome.message


def test_an_end_that_cannot_be_recorded_fails_the_host_truthfully(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = LocalAuditLog(path)

    class _BreaksAudit(_Echo):
        async def run_plan(self, host: Host, plan: Plan, sink: OutputSink) -> TransportOutcome:
            os.close(log._fd)
            log._fd = os.open(tmp_path / "ro", os.O_RDONLY | os.O_CREAT, 0o600)
            return await super().run_plan(host, plan, sink)

    outcome = asyncio.run(
        AuditedTransport(_BreaksAudit(), log).run_plan(_HOST, _plan(), lambda s, t: None)
    )
    assert outcome.state is HostRunState.FAILED and outcome.exit_code == 0
    assert outcome.reason is FailureReason.TRANSPORT_ERROR
    assert "ran (succeeded, exit code 0) but the local audit could not record its end" in (
        outcome.message
    )


def test_long_lines_and_long_argv(tmp_path: Path) -> None:
    """Records past the tail-read chunk still chain; a huge argv is kept by hash."""
    path = tmp_path / "audit.jsonl"
    log = LocalAuditLog(path)
    log.append("host.run.end", "web1", None, {"blob": "x" * 20_000})
    long_plan = Plan(commands=(PlanCommand(("/bin/sh", "-c", "echo " + "y" * 9000), 5),))
    asyncio.run(AuditedTransport(_Echo(), log).run_plan(_HOST, long_plan, lambda s, t: None))
    rows = _lines(path)
    command = rows[-1]["details"]["commands"][0]  # type: ignore[index]
    assert "argv" not in command and len(command["argv_sha256"]) == 64
    assert len(command["argv_head"]) == 4096
    assert verify_file(path).ok and verify_file(path).checked == 3


def test_a_cancelled_run_still_records_its_end(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = LocalAuditLog(path)

    class _Hangs(_Echo):
        async def run_plan(self, host: Host, plan: Plan, sink: OutputSink) -> TransportOutcome:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    async def main() -> None:
        task = asyncio.ensure_future(
            AuditedTransport(_Hangs(), log).run_plan(_HOST, _plan(), lambda s, t: None)
        )
        while len(path.read_text().splitlines()) < 1:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    end = _lines(path)[-1]
    assert end["action"] == "host.run.end"
    assert end["details"]["outcome"] == "cancelled"  # type: ignore[index]


def test_key_problems_are_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _fill(path, 1)
    key_path_for(path).chmod(0o644)
    with pytest.raises(AuditWriteError, match="readable by others"):
        LocalAuditLog(path)
    alone = tmp_path / "copied.jsonl"
    alone.write_text(path.read_text())
    with pytest.raises(AuditKeyError, match=r"no audit key at .*copied\.key"):
        verify_file(alone)


def test_the_wrapper_passes_extras_through_and_the_default_path_opens(tmp_path: Path) -> None:
    log = open_audit(None)
    assert log is not None and log.path == default_audit_path()
    inner = _Echo()
    assert AuditedTransport(inner, log).ran is inner.ran
    log.close()


def test_two_logs_on_one_file_take_turns_and_keep_one_chain(tmp_path: Path) -> None:
    # Each log remembers where its last record ended; the other's append in
    # between must make it read the head from the file again, not fork the chain.
    path = tmp_path / "audit.jsonl"
    first, second = LocalAuditLog(path, actor="a"), LocalAuditLog(path, actor="b")
    seqs = [
        log.append("host.run.end", f"h{i}", None, {"i": i})[0]
        for i in range(3)
        for log in (first, second)
    ]
    first.close()
    second.close()
    assert seqs == [1, 2, 3, 4, 5, 6]
    assert verify_file(path).ok and verify_file(path).checked == 6
