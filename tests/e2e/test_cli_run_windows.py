"""``muster run`` keeps maintenance windows: --window, a host's muster_window variable,
and --window-policy fail|ignore (wait, with its countdown, is driven in
tests/unit/test_dispatcher_windows.py: a recurring window is minute-grained)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from muster.domain.windows import DAY_NAMES
from tests.e2e.test_cli_run import muster


def _closed_spec() -> str:
    """A window on a day three days away: closed now, whatever the time."""
    day = DAY_NAMES[(dt.datetime.now(dt.UTC).weekday() + 3) % 7]
    return f"{day} 01:00-02:00 UTC"


def test_fail_policy_fails_hosts_outside_the_window_and_ignore_runs_them() -> None:
    spec = _closed_spec()
    failed = muster(
        "run", "localhost", "--window", spec, "--window-policy", "fail", "--json", "--", "echo ran"
    )
    assert failed.returncode == 1, failed.stderr
    (run,) = json.loads(failed.stdout)["hosts"]
    assert run["state"] == "failed" and run["reason"] == "outside_window"
    assert run["message"].startswith(f"outside maintenance window; next opens {spec[:3]} 01:00 UTC")
    ran = muster(
        "run", "localhost", "--window", spec, "--window-policy", "ignore", "--", "echo ran"
    )
    assert ran.returncode == 0, ran.stderr
    assert "ran" in ran.stdout


def test_inventory_variable_names_a_groups_window(tmp_path: Path) -> None:
    inv = tmp_path / "hosts.ini"
    inv.write_text(
        f'[db]\nlocalhost ansible_connection=local\n\n[db:vars]\nmuster_window="{_closed_spec()}"\n'
    )
    out = muster("run", "-i", str(inv), "db", "--window-policy", "fail", "--", "true")
    assert out.returncode == 1
    assert "outside maintenance window" in out.stdout + out.stderr


def test_bad_window_is_refused_before_anything_runs() -> None:
    out = muster("run", "localhost", "--window", "Sun 01:00-01:00", "--", "echo ran")
    assert out.returncode == 2
    assert "end_time" in out.stderr and "ran" not in out.stdout
