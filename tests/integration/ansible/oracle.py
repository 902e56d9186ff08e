"""The real Ansible, run as a user runs it, kept hermetic.

Every call gets a fresh ``ANSIBLE_HOME``, local temp directory, an empty
config file (so no ``ansible.cfg`` from the machine counts), an empty
collections path, and only the ``host_list``, ``yaml`` and ``ini`` inventory
plugins (no script plugin runs a file from the corpus). Nothing is cached
between runs: each test session starts from new directories.

Ansible's start-up costs about half a second, so calls are batched: one
``ansible-inventory --list`` per inventory (and ``--graph`` where a case
asks), and one
``ansible-playbook`` per inventory whose plays (one per pattern) each print
``ansible_play_hosts_all`` once with ``debug`` (which never connects). A
pattern Ansible refuses stops the playbook; then every pattern of that
inventory is asked alone with ``ansible PATTERN --list-hosts``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

_BIN: Final = Path(sys.executable).parent
_MARK_RE: Final = re.compile(r'^\s*"msg": "MUSTER-CASE-(\d+) (.*)"\s*$')
_STOPPED_RE: Final = re.compile(r"No hosts matched the subscripted pattern '([^']*)'")
_TIMEOUT: Final = 120


def ansible_env(home: Path) -> dict[str, str]:
    """Environment for one hermetic Ansible call under ``home``."""
    for name in ("home", "tmp", "collections"):
        (home / name).mkdir(parents=True, exist_ok=True)
    config = home / "empty.cfg"
    config.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_CONFIG=str(config),
        ANSIBLE_HOME=str(home / "home"),
        ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
        ANSIBLE_COLLECTIONS_PATH=str(home / "collections"),
        ANSIBLE_INVENTORY_ENABLED="host_list,yaml,ini",
        ANSIBLE_INVENTORY_UNPARSED_FAILED="1",
        ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED="1",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_DEPRECATION_WARNINGS="0",
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_HOST_PATTERN_MISMATCH="ignore",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_STDOUT_CALLBACK="default",
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",
        PYTHONHASHSEED="0",
        HOME=str(home / "home"),
    )
    env["PATH"] = f"{_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


@dataclass
class AnsibleView:
    """What Ansible said about one inventory: ``--list``, ``--graph``, patterns."""

    refused: str | None = None
    listing: dict[str, object] = field(default_factory=dict)
    graph: str = ""
    patterns: dict[str, list[str] | None] = field(default_factory=dict)


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=_TIMEOUT, check=False
    )


def _inventory_args(sources: list[str]) -> list[str]:
    args: list[str] = []
    for source in sources:
        args += ["-i", source]
    return args


def ask_ansible(
    workdir: Path, sources: list[str], patterns: list[str], *, graph: bool = True
) -> AnsibleView:
    """Run the real Ansible on ``sources`` (relative to ``workdir``) and ``patterns``;
    ``--graph`` too when ``graph``."""
    env = ansible_env(workdir / ".ansible-run")
    inv = _inventory_args(sources)
    view = AnsibleView()
    listed = _run([str(_BIN / "ansible-inventory"), *inv, "--list"], workdir, env)
    if listed.returncode != 0:
        view.refused = listed.stderr.strip() or listed.stdout.strip()
        return view
    view.listing = json.loads(listed.stdout)
    if graph:
        drawn = _run([str(_BIN / "ansible-inventory"), *inv, "--graph"], workdir, env)
        view.graph = drawn.stdout.rstrip("\n")
    if patterns:
        view.patterns = _patterns(workdir, inv, patterns, env)
    return view


def _patterns(
    workdir: Path, inv: list[str], patterns: list[str], env: dict[str, str]
) -> dict[str, list[str] | None]:
    """Every pattern's hosts: one playbook for all of them. A pattern Ansible refuses
    (a subscript past the end: the play stops with an error) is None, and the rest
    run again."""
    found: dict[str, list[str] | None] = {}
    # Ansible makes one implicit localhost per run, named by the first pattern that
    # asks for it: such patterns are asked alone, as a user would.
    local = [p for p in patterns if any(n in p for n in ("localhost", "127.0.0.1", "::1"))]
    for pattern in local:
        found[pattern] = _one_pattern(workdir, inv, pattern, env)
    remaining = [p for p in patterns if p not in local]
    while remaining:
        ran = _playbook(workdir, inv, remaining, env)
        if ran.returncode == 0:
            found.update({p: [] for p in remaining})
            for line in ran.stdout.splitlines():
                mark = _MARK_RE.match(line)
                if mark is not None:
                    hosts = json.loads(json.loads(f'"{mark.group(2)}"'))
                    found[remaining[int(mark.group(1))]] = hosts
            break
        stopped = _STOPPED_RE.search(ran.stderr + ran.stdout)
        culprits = [p for p in remaining if stopped and stopped.group(1) in p] or remaining
        for pattern in culprits:
            found[pattern] = None if stopped else _one_pattern(workdir, inv, pattern, env)
        remaining = [p for p in remaining if p not in culprits]
    return {p: found[p] for p in patterns}


def _playbook(
    workdir: Path, inv: list[str], patterns: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    plays = [
        {
            "name": f"case {i}",
            "hosts": pattern,
            "gather_facts": False,
            "tasks": [
                {
                    "debug": {"msg": f"MUSTER-CASE-{i} {{{{ ansible_play_hosts_all | to_json }}}}"},
                    "run_once": True,
                }
            ],
        }
        for i, pattern in enumerate(patterns)
    ]
    book = workdir / ".ansible-run" / "patterns.yml"
    book.write_text(json.dumps(plays))
    return _run([str(_BIN / "ansible-playbook"), *inv, str(book)], workdir, env)


def _one_pattern(
    workdir: Path, inv: list[str], pattern: str, env: dict[str, str]
) -> list[str] | None:
    """``ansible PATTERN --list-hosts``; None when Ansible refuses the pattern."""
    ran = _run([str(_BIN / "ansible"), pattern, *inv, "--list-hosts"], workdir, env)
    if ran.returncode != 0:
        return None
    lines = ran.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("hosts ("))
    return [line.strip() for line in lines[start + 1 :] if line.strip()]
