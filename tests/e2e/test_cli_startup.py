"""The CLI loads only what a command uses: start-up is paid on every invocation,
and on a fleet run it is most of the controller's CPU (issue 10). Each case runs
the real entry point in a fresh interpreter and reads back which top-level
packages ended up in ``sys.modules``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: The server and storage stack: never needed to run a command or print help.
SERVER_STACK = {"sqlalchemy", "alembic", "fastapi", "starlette", "uvicorn"}

#: Runs ``muster <argv>`` through the console-script entry point in-process, then
#: writes the exit status and the loaded top-level packages to the file named first.
CHILD = """
import json, sys
out, *argv = sys.argv[1:]
sys.argv = ["muster", *argv]
from muster.cli.main import main
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code
with open(out, "w") as fh:
    json.dump({"code": code, "modules": sorted({m.partition(".")[0] for m in sys.modules})}, fh)
"""


def loaded_after(tmp_path: Path, *argv: str) -> tuple[object, set[str]]:
    out = tmp_path / "modules.json"
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(out), *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    return doc["code"], set(doc["modules"])


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--help"], id="help"),
        pytest.param([], id="no-args"),
        pytest.param(["run", "--help"], id="run-help"),
        pytest.param(["inventory", "--help"], id="inventory-help"),
    ],
)
def test_help_loads_no_server_stack(tmp_path: Path, argv: list[str]) -> None:
    code, modules = loaded_after(tmp_path, *argv)
    assert code in (0, None, 2)  # click exits 2 for a bare group with no_args_is_help
    assert not modules & SERVER_STACK, sorted(modules & SERVER_STACK)
    assert "pydantic_settings" not in modules


def test_local_run_loads_neither_server_stack_nor_ssh(tmp_path: Path) -> None:
    code, modules = loaded_after(tmp_path, "run", "localhost", "--", "true")
    assert code == 0
    assert not modules & SERVER_STACK, sorted(modules & SERVER_STACK)
    assert "asyncssh" not in modules
    assert "pydantic_settings" not in modules


def test_ssh_run_loads_ssh_but_not_server_stack(tmp_path: Path) -> None:
    """An SSH host does need asyncssh; the port is closed, so the run fails fast."""
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("far ansible_host=127.0.0.1 ansible_port=1\n")
    code, modules = loaded_after(
        tmp_path, "run", "-i", str(inventory), "far", "--known-hosts", os.devnull, "--", "true"
    )
    assert code == 1
    assert "asyncssh" in modules
    assert not modules & SERVER_STACK, sorted(modules & SERVER_STACK)
