"""The audit log: filter by actor, action, target and time; verify the chain.

Reads the store the API's ``/api/v1/audit`` reads, with the same prefix rule
(``user.*``, ``execution:*``). Verifying walks the whole chain and shows
its result and the anchor to keep for later verifications.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from muster.server.auth import security_store
from muster.server.schemas.common import MAX_OFFSET
from muster.server.web.render import HtmlErrorRoute, in_thread, page

__all__ = ["router"]

router = APIRouter(route_class=HtmlErrorRoute, include_in_schema=False)

PAGE = 50


def _time(text: str) -> dt.datetime | None:
    """A ``datetime-local`` value (read as UTC) or an ISO time with a zone."""
    if not text:
        return None
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@router.get("/admin/audit", response_class=HTMLResponse)
async def audit(
    request: Request,
    actor: Annotated[str, Query(max_length=128)] = "",
    action: Annotated[str, Query(max_length=128)] = "",
    target: Annotated[str, Query(max_length=300)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    verify: Annotated[bool, Query()] = False,
) -> HTMLResponse:
    sec = security_store(request.app)
    problems: dict[str, str] = {}
    times: dict[str, dt.datetime | None] = {}
    for name, text in (("since", since), ("until", until)):
        try:
            times[name] = _time(text)
        except ValueError:
            problems[name] = "not a date and time"
    items: Any = ()
    total = 0
    if not problems:
        found = await in_thread(
            lambda: sec.list_audit(
                actor=actor or None,
                action=action or None,
                target=target or None,
                since=times.get("since"),
                until=times.get("until"),
                limit=PAGE,
                offset=offset,
            )
        )
        items, total = found.items, found.total
    result = await in_thread(sec.verify_audit) if verify else None
    params = {"actor": actor, "action": action, "target": target, "since": since, "until": until}
    return page(
        request,
        "audit.html",
        items=items,
        total=total,
        offset=offset,
        page_size=PAGE,
        params=params,
        problems=problems,
        result=result,
    )
