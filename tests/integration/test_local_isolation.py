"""LocalTransport as a server runs it: another account, a fresh private directory, a clean
environment; and a refusal, never a fallback, when it cannot switch to that account."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from muster.domain.hosts import Host, TransportKind
from muster.domain.planbuilder import build_script_plan
from muster.domain.plans import Plan
from muster.domain.scripts import ScriptVersion, Shell
from muster.domain.states import FailureReason, HostRunState
from muster.transports.local import LocalIsolation, LocalTransport
from tests.integration.ssh_helpers import Collect, sh

HOST = Host("srv", transport=TransportKind.LOCAL)
ACCOUNT = "nobody"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")


def _isolated(**kw: object) -> LocalTransport:
    return LocalTransport(isolation=LocalIsolation(ACCOUNT, **kw))  # type: ignore[arg-type]


@needs_root
async def test_runs_as_the_account_in_a_fresh_directory_removed_afterwards(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MUSTER_SECRET_KEY", "server-only-secret")
    monkeypatch.setenv("SERVER_ONLY", "also-not-for-runs")
    transport = _isolated()
    script = "id -un; id -G; pwd; echo home=$HOME; umask; env; touch made-here"
    sink = Collect()
    outcome = await transport.run_plan(HOST, Plan(commands=(sh(script),), env={"P": "v"}), sink)
    assert outcome.state is HostRunState.SUCCEEDED, sink.stderr
    lines = sink.stdout.splitlines()
    account = pwd.getpwnam(ACCOUNT)
    assert lines[0] == ACCOUNT
    assert lines[1].split() == [str(account.pw_gid)]  # no supplementary groups of the server
    workdir = lines[2]
    assert workdir != os.getcwd() and lines[3] == f"home={workdir}"
    assert lines[4] == "0077"
    env = dict(line.split("=", 1) for line in lines[5:] if "=" in line)
    assert env["P"] == "v" and env["HOME"] == workdir and env["USER"] == ACCOUNT
    assert not [k for k in env if k.startswith("MUSTER_")]
    assert "SERVER_ONLY" not in env
    assert not Path(workdir).exists()  # removed after the run, with what the run made

    again = Collect()
    await transport.run_plan(HOST, Plan(commands=(sh("pwd"),)), again)
    assert again.stdout.strip() != workdir  # fresh every run


@needs_root
async def test_a_script_plan_file_is_readable_by_the_account(tmp_path: Path) -> None:
    version = ScriptVersion(name="who", shell=Shell.SH, body="id -un\n")
    plan = build_script_plan(version, {}, run_id="isolated1")
    sink = Collect()
    outcome = await _isolated().run_plan(HOST, plan, sink)
    assert outcome.state is HostRunState.SUCCEEDED, sink.stderr
    assert sink.stdout == f"{ACCOUNT}\n"
    assert not Path(plan.files[0].path).exists()  # its own clean-up removed it


@needs_root
async def test_a_planted_symlink_at_the_plan_path_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    version = ScriptVersion(name="who", shell=Shell.SH, body="echo ran\n")
    plan = build_script_plan(version, {}, run_id="isolated2", tmp_dir=str(tmp_path))
    Path(plan.files[0].path).symlink_to(victim)
    sink = Collect()
    outcome = await _isolated().run_plan(HOST, plan, sink)
    assert victim.read_text() == "keep me\n"
    assert outcome.state is HostRunState.FAILED or sink.stdout == "ran\n"


@needs_root
async def test_the_server_data_directory_is_out_of_reach(tmp_path: Path) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    os.chmod(tmp_path, 0o755)
    os.chmod(open_dir, 0o755)
    data = open_dir / "data"
    data.mkdir(mode=0o700)
    (data / "secret.key").write_text("k")
    sink = Collect()
    plan = Plan(commands=(sh(f"cat {data}/secret.key || ls {data} || echo refused"),))
    await _isolated().run_plan(HOST, plan, sink)
    assert "Permission denied" in sink.stderr and sink.stdout.strip() == "refused"


async def test_the_servers_own_account_is_refused_not_used() -> None:
    me = pwd.getpwuid(os.geteuid()).pw_name
    sink = Collect()
    transport = LocalTransport(isolation=LocalIsolation(me))
    outcome = await transport.run_plan(HOST, Plan(commands=(sh("echo ran"),)), sink)
    assert outcome.state is HostRunState.FAILED and not outcome.started
    assert outcome.reason is FailureReason.TRANSPORT_ERROR
    assert "server's own" in outcome.message and me in outcome.message
    assert sink.stdout == ""


async def test_an_unknown_account_is_refused() -> None:
    sink = Collect()
    transport = LocalTransport(isolation=LocalIsolation("no-such-account-xyz"))
    outcome = await transport.run_plan(HOST, Plan(commands=(sh("echo ran"),)), sink)
    assert outcome.state is HostRunState.FAILED and not outcome.started
    assert "no-such-account-xyz" in outcome.message and sink.stdout == ""


@pytest.mark.skipif(os.geteuid() == 0, reason="as root the switch succeeds")
async def test_without_root_another_account_is_refused() -> None:
    sink = Collect()
    outcome = await _isolated().run_plan(HOST, Plan(commands=(sh("echo ran"),)), sink)
    assert outcome.state is HostRunState.FAILED and not outcome.started
    assert "cannot switch" in outcome.message and sink.stdout == ""
