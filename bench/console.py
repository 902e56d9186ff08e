"""Console pages' server-side render time with 10,000 executions in history.

Fills a fresh SQLite store through the Store API: one execution on 5,000
hosts finished with mixed results (so grouping has work to do), then 10,000
small executions. Then times, in-process through the ASGI app (routing,
queries, templates; no network), the history page, the execution view of the
5,000-host execution and its live summary, beside two baselines measured in
the same run: ``/health`` (a trivial route) and the JSON API's execution list.

    uv run python bench/console.py [--executions 10000] [--hosts 5000] [--repeat 30]

Goal (issue 4): every page under 200 ms.
"""

# ruff: noqa: E402
from __future__ import annotations

import sys
from pathlib import Path

# (bench/ is kept off sys.path below out of habit; nothing here shadows the stdlib.)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import statistics
import tempfile
import time
from typing import Any

from fastapi.testclient import TestClient

from muster.config import Settings
from muster.domain.hosts import Host
from muster.domain.scripts import ScriptVersion, Shell
from muster.domain.states import HostRunState
from muster.server.app import create_app
from muster.server.web.grouping import group_results
from muster.store.base import ExecutionKind, HostTarget, NewExecution
from muster.store.console_reads import run_digests
from muster.store.sqlalchemy_store import SqlStore, open_store

GOAL_MS = 200.0


def _finish_all(store: SqlStore) -> int:
    """Claim and finish every queued host run with mixed results (through the store)."""
    done = 0
    while True:
        claimed = store.claim_host_runs("bench-worker", 500, 600)
        if not claimed:
            return done
        for c in claimed:
            i = done
            done += 1
            store.mark_started(c.id, "bench-worker", c.epoch)
            if i % 97 == 0:
                store.append_output(c.id, "bench-worker", c.epoch, "stderr", "disk full\n")
                state, code = HostRunState.FAILED, 1
            elif i % 251 == 0:
                state, code = HostRunState.TIMED_OUT, None
            else:
                store.append_output(c.id, "bench-worker", c.epoch, "stdout", "ok\n")
                state, code = HostRunState.SUCCEEDED, 0
            store.finish_host_run(c.id, "bench-worker", c.epoch, state, exit_code=code)


def fill(store: SqlStore, n_executions: int, n_hosts: int) -> tuple[str, str]:
    """(big execution id, small execution id), after inserting and finishing everything.

    Everything ends terminal, so the server's webhook watcher has nothing to
    follow while pages are timed.
    """
    saved = store.save_script(
        ScriptVersion(name="bench-script", shell=Shell.SH, body="echo ok", timeout=60),
        tags=["bench"],
    )

    def new(targets: list[HostTarget]) -> str:
        return store.create_execution(
            NewExecution(
                kind=ExecutionKind.SCRIPT,
                targets=targets,
                timeout=60,
                script_id=saved.script.id,
                script_version=1,
                content_hash=saved.version.content_hash,
                description="script bench-script v1",
            )
        ).id

    store.upsert_hosts(
        [
            Host(f"host{i:05d}", address=f"10.0.{i // 250}.{i % 250 + 1}", groups=("web",))
            for i in range(n_hosts)
        ]
    )
    ids = {h.name: h.id for h in store.list_hosts()}
    names = sorted(ids)
    big = new([HostTarget(ids[n], n) for n in names])
    _finish_all(store)
    small = ""
    for i in range(n_executions):
        skip = "host offline" if i % 3 == 0 else None
        name = names[i % n_hosts]
        small = new([HostTarget(ids[name], name, skip)])
    _finish_all(store)
    return big, small


def timed(client: TestClient, url: str, repeat: int, headers: dict[str, str]) -> dict[str, Any]:
    client.get(url, headers=headers)  # warm caches, templates, statement cache
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(url, headers=headers)
        samples.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url}: HTTP {response.status_code}: {response.text[:300]}")
    samples.sort()
    return {
        "url": url,
        "median": statistics.median(samples),
        "p95": samples[int(0.95 * (len(samples) - 1))],
        "bytes": len(response.content),
    }


def cold_grouping(store: SqlStore, execution_id: str, repeat: int = 10) -> dict[str, Any]:
    """What the summary pays when an execution's counters change: digests + grouping."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        group_results(run_digests(store.engine, execution_id))
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {
        "url": "(in process)",
        "median": statistics.median(samples),
        "p95": samples[int(0.95 * (len(samples) - 1))],
        "bytes": 0,
    }


def auth_headers(app: Any) -> dict[str, str]:
    """A bearer token when the security middleware is installed; none otherwise."""
    try:
        from muster.server.auth import AuthMiddleware, security_store
    except ImportError:
        return {}
    if not any(m.cls is AuthMiddleware for m in app.user_middleware):
        return {}
    sec = security_store(app)
    sec.create_user("bench", roles=["admin"])  # token only
    issued, _ = sec.create_token("bench", "bench")
    return {"Authorization": f"Bearer {issued.token.reveal()}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=10_000)
    parser.add_argument("--hosts", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="muster-bench-console-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data")
        store = open_store(settings)
        t0 = time.perf_counter()
        big, small = fill(store, args.executions, args.hosts)
        print(
            f"filled: 1 execution on {args.hosts} hosts + {args.executions} executions "
            f"in {time.perf_counter() - t0:.1f}s",
            file=sys.stderr,
        )
        app = create_app(settings, store=store, embedded_worker=False)
        with TestClient(app) as client:
            headers = auth_headers(app)
            urls = [
                ("baseline: /health", "/health"),
                ("baseline: JSON API list (50)", "/api/v1/automation/executions?limit=50"),
                ("history, first page", "/history"),
                ("history, state filter", "/history?status=skipped"),
                ("history, page 100", "/history?offset=5000"),
                ("history, host filter", "/history?host=host00042"),
                (f"execution view, {args.hosts} hosts", f"/executions/{big}"),
                ("live summary (JSON)", f"/ui/executions/{big}/summary"),
                ("live summary, failed only", f"/ui/executions/{big}/summary?filter=failed"),
                ("execution view, 1 host", f"/executions/{small}"),
                ("scripts list", "/scripts"),
                (f"hosts list, {args.hosts} hosts", "/hosts"),
                ("one host with recent runs", "/hosts/host00042"),
            ]
            rows = [(label, timed(client, url, args.repeat, headers)) for label, url in urls]
            rows.append((f"grouping {args.hosts} hosts, uncached", cold_grouping(store, big)))
        store.engine.dispose()
    width = max(len(label) for label, _ in rows)
    print(f"{'page':<{width}}  {'median ms':>9}  {'p95 ms':>7}  {'KiB':>6}  goal")
    for label, r in rows:
        ok = "" if label.startswith("baseline") else ("ok" if r["p95"] < GOAL_MS else "OVER")
        print(
            f"{label:<{width}}  {r['median']:9.1f}  {r['p95']:7.1f}  {r['bytes'] / 1024:6.1f}  {ok}"
        )
    return 0 if all(r["p95"] < GOAL_MS for _, r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
