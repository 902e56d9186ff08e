"""``muster rollout publish|list|show`` as a user runs them against a live server.

The files published are what a real rollout wrote (tests/support/rollout_sample.py
runs the in-process engine on local hosts): the report document, and a plain
``RolloutRun.to_dict()`` (whose host view the server derives).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cli_kit import client_env
from tests.integration.server.harness import LiveServer, server_settings
from tests.support.rollout_sample import SECRET, run_sample

MUSTER = str(Path(sys.executable).parent / "muster")


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[dict[str, str]]:
    server = LiveServer(server_settings(tmp_path / "data"), localhost=True).start()
    env = client_env(server, tmp_path)
    try:
        yield env
    finally:
        server.stop()


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MUSTER, *args], capture_output=True, text=True, timeout=120, env=env)


def test_publish_list_show(cli: dict[str, str], tmp_path: Path) -> None:
    result, report = run_sample(tmp_path / "rollout")
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))

    first = run(cli, "rollout", "publish", str(path))
    assert first.returncode == 0, first.stderr
    assert f"rollout {report['id']} of patch_openssl: rollback_failed, published" in first.stdout
    assert "1 host(s) FLAGGED" in first.stdout
    again = run(cli, "rollout", "publish", str(path))
    assert again.returncode == 0 and "already published (unchanged)" in again.stdout

    report["status"] = "succeeded"
    path.write_text(json.dumps(report))
    changed = run(cli, "rollout", "publish", str(path))
    assert changed.returncode != 0
    assert "409" in changed.stderr and "already published with other content" in changed.stderr

    # A plain RolloutRun.to_dict(), as the library returns it: the server derives hosts.
    plain = result.to_dict()
    plain["id"] = "plain-run"
    (tmp_path / "plain.json").write_text(json.dumps(plain))
    assert run(cli, "rollout", "publish", str(tmp_path / "plain.json")).returncode == 0

    listed = json.loads(run(cli, "rollout", "list", "--json").stdout)
    assert {r["id"] for r in listed} == {report["id"], "plain-run"}
    table = run(cli, "rollout", "list").stdout
    assert "patch_openssl" in table and "rollback_failed" in table

    shown = run(cli, "rollout", "show", report["id"])
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "wave 2 (rolled_back)" in out
    assert "h3: rolled_back drift: motd" in out
    assert "gate: stopped the rollout: verification failed on 1 host(s): h3" in out
    assert "FLAGGED: h1" in out
    assert SECRET not in out

    derived = json.loads(run(cli, "rollout", "show", "plain-run", "--json").stdout)
    assert derived["document"]["hosts"]["h3"]["state"] == "rolled_back"
    assert derived["document"]["hosts"]["h1"]["flagged"] is True
    assert derived["document"]["hosts"]["h3"]["drift"] == ["motd"]


def test_bad_files_are_refused_with_a_reason(cli: dict[str, str], tmp_path: Path) -> None:
    missing = run(cli, "rollout", "publish", str(tmp_path / "nope.json"))
    assert missing.returncode != 0 and "cannot read" in missing.stderr
    (tmp_path / "bad.json").write_text("{not json")
    bad = run(cli, "rollout", "publish", str(tmp_path / "bad.json"))
    assert bad.returncode != 0 and "is not JSON" in bad.stderr
    (tmp_path / "shape.json").write_text(json.dumps({"id": "x", "workflow": "w"}))
    shape = run(cli, "rollout", "publish", str(tmp_path / "shape.json"))
    assert shape.returncode != 0 and "422" in shape.stderr and "status" in shape.stderr
    assert "no rollout report" in run(cli, "rollout", "list").stdout
    unknown = run(cli, "rollout", "show", "nope")
    assert unknown.returncode != 0 and "404" in unknown.stderr
