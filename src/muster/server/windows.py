"""``/api/v1/maintenance-windows``: define windows, see the forecast, override one execution.

Reading windows and the forecast needs ``jobs.view``; defining or deleting a
window needs ``windows.manage``; letting an execution run outside its
windows needs ``windows.override``. Changes and overrides are audited by
:class:`~muster.services.windows.WindowService`. A run waiting for a window
shows it in its ``waiting_reason`` (``outside maintenance window; next
opens Sun 01:00 CET``) wherever host runs are shown.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from muster.domain.windows import Forecast, MaintenanceWindow
from muster.server.actors import CurrentActor
from muster.server.context import ServerContext, get_context
from muster.services.windows import MAX_FORECAST_DAYS, WindowService, window_from_fields

__all__ = ["WindowIn", "forecast_json", "router", "window_json"]

router = APIRouter(prefix="/api/v1/maintenance-windows", tags=["maintenance windows"])
Ctx = Annotated[ServerContext, Depends(get_context)]


class WindowIn(BaseModel):
    """A recurring window (``spec``, or ``days`` + ``start_time`` + ``end_time``) or a
    one-off extra window or blackout (``starts_at`` + ``ends_at``, local to
    ``timezone`` unless they carry an offset)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=200)
    kind: Literal["recurring", "extra", "blackout"] = "recurring"
    #: host, group, or all hosts
    scope: Literal["host", "group", "all"] = "group"
    #: The host or group name (ignored for ``all``).
    target: str = Field(default="", max_length=253)
    #: An IANA time zone, e.g. Europe/Berlin.
    timezone: str = Field(default="UTC", max_length=64)
    #: ``Sun 01:00-03:00`` (an end at or before the start crosses midnight).
    spec: str | None = Field(default=None, max_length=100)
    days: str | None = Field(default=None, max_length=40)
    start_time: str | None = Field(default=None, max_length=5)
    end_time: str | None = Field(default=None, max_length=5)
    starts_at: str | None = Field(default=None, max_length=40)
    ends_at: str | None = Field(default=None, max_length=40)
    #: What happens to hosts still running when the window closes.
    close_policy: Literal["finish", "stop"] = "finish"


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    execution_id: str = Field(min_length=1, max_length=36)
    reason: str = Field(default="", max_length=500)


def _service(ctx: ServerContext) -> WindowService:
    return WindowService(ctx.store, ctx.store, schedules=ctx.store)


def window_json(w: MaintenanceWindow, now: dt.datetime | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": w.id,
        "name": w.name,
        "kind": w.kind.value,
        "scope": w.scope.value,
        "target": w.target,
        "timezone": w.timezone,
        "spec": w.spec(),
        "days": sorted(w.days),
        "start_time": f"{w.start_time:%H:%M}" if w.start_time else None,
        "end_time": f"{w.end_time:%H:%M}" if w.end_time else None,
        "starts_at": w.starts_at,
        "ends_at": w.ends_at,
        "close_policy": w.close_policy.value,
    }
    if now is not None:
        nxt = next(iter(w.occurrences(now, now + dt.timedelta(days=366))), None)
        out["next_open"] = {"start": nxt[0], "end": nxt[1]} if nxt else None
    return out


def forecast_json(fc: Forecast) -> dict[str, Any]:
    entries = [
        {
            "source": e.source,
            "source_id": e.source_id,
            "due_at": e.due_at,
            "host": e.host,
            "status": e.status.value,
            "starts_at": e.starts_at,
            "window": e.window,
            "window_closes_at": e.window_closes_at,
            "reason": e.reason,
        }
        for e in fc.entries
    ]
    return {
        "start": fc.start,
        "end": fc.end,
        "entries": entries,
        "will_not_fit": [e for e in entries if e["status"] == "will_not_fit"],
    }


@router.get("")
def list_windows(ctx: Ctx) -> list[dict[str, Any]]:
    now = ctx.store.clock()
    return [window_json(w, now) for w in _service(ctx).windows()]


@router.post("", status_code=201)
def create_window(body: WindowIn, ctx: Ctx, who: CurrentActor) -> dict[str, Any]:
    """422 names the field: an unknown time zone, an end equal to the start, ..."""
    window = window_from_fields(**body.model_dump())
    return window_json(_service(ctx).create(who, window), ctx.store.clock())


@router.get("/forecast")
def get_forecast(
    ctx: Ctx, days: Annotated[float, Query(gt=0, le=MAX_FORECAST_DAYS)] = 7
) -> dict[str, Any]:
    """What the schedules will run on which hosts in the next ``days`` days, the window
    each host run lands in, and the ones that will not fit."""
    return forecast_json(_service(ctx).forecast(days))


@router.post("/overrides")
def override(body: OverrideIn, ctx: Ctx, who: CurrentActor) -> dict[str, Any]:
    """Run an execution now, outside its hosts' windows (``windows.override``; audited)."""
    released = _service(ctx).override(who, body.execution_id, body.reason)
    return {"execution_id": body.execution_id, "released": released}


@router.get("/{window_id}")
def get_window(window_id: str, ctx: Ctx) -> dict[str, Any]:
    return window_json(_service(ctx).get(window_id), ctx.store.clock())


@router.delete("/{window_id}", status_code=204)
def delete_window(window_id: str, ctx: Ctx, who: CurrentActor) -> Response:
    _service(ctx).delete(who, window_id)
    return Response(status_code=204)
