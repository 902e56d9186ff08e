"""Published rollout reports in the console: the list, the rollout view, a host's drift.

The rollout view draws the waves as lanes (hosts coloured by state), the gate
between each wave and the next with its verification result, the rollback
lane, and calls out flagged hosts first. A host's page is its drift report:
per verification, each check's before and after value, the comparison and
pass/fail, the captured texts before and after, and the unexpected drift.

Documents come from publishers, so every field is read defensively here
(a missing or mistyped key shows as empty, never as a 500); the templates
autoescape everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from muster.errors import NotFoundError
from muster.server.web.render import HtmlErrorRoute, in_thread, page, web_context

__all__ = ["router"]

router = APIRouter(route_class=HtmlErrorRoute, include_in_schema=False)


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return "" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class _Host:
    name: str
    state: str
    reason: str
    flagged: bool
    drift: tuple[str, ...]
    passed: bool


@dataclass(frozen=True, slots=True)
class _Gate:
    passed: bool
    why: str
    failed: int
    counted: int


@dataclass(frozen=True, slots=True)
class _Wave:
    number: int
    status: str
    hosts: tuple[_Host, ...]
    gate: _Gate | None
    wait_reason: str


@dataclass(frozen=True, slots=True)
class _Rollback:
    host: str
    wave: int
    state: str
    message: str
    flagged: bool


def _host(name: str, info: Mapping[str, Any], flagged: set[str]) -> _Host:
    return _Host(
        name=name,
        state=_text(info.get("state")) or "unknown",
        reason=_text(info.get("reason")),
        flagged=name in flagged or info.get("flagged") is True,
        drift=tuple(_text(d) for d in _list(info.get("drift"))),
        passed=info.get("passed") is not False,
    )


def _view(doc: Mapping[str, Any]) -> dict[str, Any]:
    flagged = {_text(h) for h in _list(doc.get("flagged_hosts"))}
    hosts = _map(doc.get("hosts"))
    waves: list[_Wave] = []
    for i, wave in enumerate(_list(doc.get("waves"))):
        w = _map(wave)
        gate = _map(w.get("gate")) if w.get("gate") is not None else None
        waves.append(
            _Wave(
                number=i + 1,
                status=_text(w.get("status")),
                hosts=tuple(
                    _host(_text(h), _map(hosts.get(_text(h))), flagged)
                    for h in _list(w.get("hosts"))
                ),
                gate=_Gate(
                    passed=gate.get("passed") is True,
                    why=_text(gate.get("why")),
                    failed=int(gate.get("failed") or 0),
                    counted=int(gate.get("counted") or 0),
                )
                if gate is not None
                else None,
                wait_reason=_text(w.get("wait_reason")),
            )
        )
    rollback = [
        _Rollback(
            host=_text(h),
            wave=int(_map(o).get("wave") or 0) + 1,
            state=_text(_map(o).get("state")),
            message=_text(_map(o).get("message")),
            flagged=_text(h) in flagged,
        )
        for h, o in _map(doc.get("rollback")).items()
    ]
    rollback.sort(key=lambda r: (-r.wave, r.host))
    return {"waves": waves, "rollback": rollback, "flagged": sorted(flagged)}


@router.get("/rollouts", response_class=HTMLResponse)
async def rollouts_page(request: Request) -> HTMLResponse:
    store = web_context(request).store
    reports = await in_thread(store.list_rollout_reports, limit=200)
    shown: HTMLResponse = page(request, "rollouts.html", reports=reports)
    return shown


@router.get("/rollouts/{rollout_id}", response_class=HTMLResponse)
async def rollout_page(request: Request, rollout_id: str) -> HTMLResponse:
    store = web_context(request).store
    record = await in_thread(store.get_rollout_report, rollout_id)
    doc = await in_thread(store.rollout_report_document, rollout_id)
    shown: HTMLResponse = page(
        request,
        "rollout.html",
        record=record,
        message=_text(doc.get("message")),
        **_view(doc),
    )
    return shown


@dataclass(frozen=True, slots=True)
class _Capture:
    key: str
    before: str
    after: str
    changed: bool
    drift: bool


def _evidence(e: Mapping[str, Any]) -> dict[str, Any]:
    before, after = _map(e.get("before")), _map(e.get("after"))
    drift = {_text(d) for d in _list(e.get("drift"))}
    keys = list(dict.fromkeys([*before, *after]))
    return {
        "verification": _text(e.get("verification")),
        "passed": e.get("passed") is True,
        "error": _text(e.get("error")),
        "checks": [
            {
                "key": _text(c.get("key")),
                "type": _text(c.get("type")),
                "before": _text(c.get("before_value")),
                "after": _text(c.get("after_value")),
                "expected": _text(c.get("expected")),
                "passed": c.get("passed") is True,
                "detail": _text(c.get("detail")),
            }
            for c in (_map(c) for c in _list(e.get("checks")))
        ],
        "captures": [
            _Capture(
                key=_text(k),
                before=_text(before.get(k)),
                after=_text(after.get(k)),
                changed=before.get(k) != after.get(k),
                drift=_text(k) in drift,
            )
            for k in keys
        ],
        "drift": sorted(drift),
        "drift_details": [_text(d) for d in _list(e.get("drift_details"))],
    }


@router.get("/rollouts/{rollout_id}/hosts/{rollout_host}", response_class=HTMLResponse)
async def rollout_host_page(request: Request, rollout_id: str, rollout_host: str) -> HTMLResponse:
    store = web_context(request).store
    record = await in_thread(store.get_rollout_report, rollout_id)
    doc = await in_thread(store.rollout_report_document, rollout_id)
    info = _map(_map(doc.get("hosts")).get(rollout_host))
    if not info:
        raise NotFoundError(f"no host {rollout_host} in rollout report {rollout_id}")
    flagged = {_text(h) for h in _list(doc.get("flagged_hosts"))}
    rollback = _map(_map(doc.get("rollback")).get(rollout_host))
    shown: HTMLResponse = page(
        request,
        "rollout_host.html",
        record=record,
        host=_host(rollout_host, info, flagged),
        wave=int(info.get("wave") or 0) + 1,
        rollback_state=_text(rollback.get("state")),
        rollback_message=_text(rollback.get("message")),
        evidence=[_evidence(_map(e)) for e in _list(info.get("evidence"))],
    )
    return shown
