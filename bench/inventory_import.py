"""Inventory import benchmark: parse and store time for growing inventories, as ratios.

For each format (Ansible INI, Ansible YAML, ssh_config) it parses and
resolves inventories of N, 2N and 4N hosts (two lines each), then writes the
hosts into a fresh SQLite store with ``upsert_hosts`` (the server's import
path). Linear work shows ratios near 2.0 between neighbouring sizes; a
quadratic step shows 4.0. Wall times on shared cores are noisy: read the
ratios, rerun before quoting.

    uv run python bench/inventory_import.py            # 5,000 / 10,000 / 20,000 hosts
    uv run python bench/inventory_import.py --hosts 2000 --json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from muster.domain.inventory import Inventory
from muster.domain.inventory_formats import parse_ansible_ini, parse_ansible_yaml, parse_ssh_config
from muster.security.vault import Vault
from muster.store._core import make_engine
from muster.store.migrations import upgrade
from muster.store.sqlalchemy_store import SqlStore


def _ini(n: int) -> str:
    lines = ["[web]"]
    lines += [f"web{i:06d} ansible_host=10.{i >> 16}.{i >> 8 & 255}.{i & 255}" for i in range(n)]
    lines += ["[web:vars]", "ansible_user=deploy"]
    return "\n".join(lines) + "\n"


def _yaml(n: int) -> str:
    hosts = "".join(
        f"        web{i:06d}:\n          ansible_host: 10.{i >> 16}.{i >> 8 & 255}.{i & 255}\n"
        for i in range(n)
    )
    return "all:\n  children:\n    web:\n      vars: {ansible_user: deploy}\n      hosts:\n" + hosts


def _ssh(n: int) -> str:
    head = "Host *\n  User deploy\n"
    return head + "".join(
        f"Host web{i:06d}\n  HostName 10.{i >> 16}.{i >> 8 & 255}.{i & 255}\n" for i in range(n)
    )


FORMATS: dict[str, tuple[Callable[[int], str], Callable[[str], Inventory]]] = {
    "ini": (_ini, parse_ansible_ini),
    "yaml": (_yaml, parse_ansible_yaml),
    "ssh_config": (_ssh, parse_ssh_config),
}


def _store(directory: Path) -> SqlStore:
    engine = make_engine(f"sqlite:///{directory / 'bench.db'}")
    upgrade(engine)
    return SqlStore(engine, vault=Vault(os.urandom(32)))


def measure(sizes: list[int]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for fmt, (make, parse) in FORMATS.items():
        previous: dict[str, float] = {}
        for n in sizes:
            text = make(n)
            start = time.perf_counter()
            hosts = parse(text).all_hosts()
            parsed = time.perf_counter() - start
            with tempfile.TemporaryDirectory() as tmp:
                store = _store(Path(tmp))
                start = time.perf_counter()
                store.upsert_hosts(hosts)
                stored = time.perf_counter() - start
                store.close()
            row: dict[str, object] = {
                "format": fmt,
                "hosts": n,
                "lines": text.count("\n"),
                "parse_s": round(parsed, 3),
                "store_s": round(stored, 3),
            }
            if previous:
                row["parse_x"] = round(parsed / previous["parse"], 2)
                row["store_x"] = round(stored / previous["store"], 2)
            previous = {"parse": parsed, "store": stored}
            rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=5000, help="smallest size (then 2x and 4x)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = measure([args.hosts, 2 * args.hosts, 4 * args.hosts])
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    head = ("format", "hosts", "lines", "parse s", "x prev", "store s", "x prev")
    print(f"{head[0]:<11}" + "".join(f"{h:>9}" for h in head[1:]))
    for r in rows:
        print(
            f"{r['format']:<11}{r['hosts']:>9}{r['lines']:>9}{r['parse_s']:>9}"
            f"{r.get('parse_x', ''):>9}{r['store_s']:>9}{r.get('store_x', ''):>9}"
        )


if __name__ == "__main__":
    main()
