"""The combined log of an execution: every host's lines in time order, each prefixed
by its host; filter by host and text; download it as a text file."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Annotated, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from muster.server.header_values import attachment
from muster.server.web.combined_log import LogLine, combined_lines, format_line
from muster.server.web.render import HtmlErrorRoute, in_thread, page, web_context

__all__ = ["router"]

router = APIRouter(route_class=HtmlErrorRoute, include_in_schema=False)

#: Lines shown on the page; the download has them all.
SHOWN: Final = 2000


@router.get("/executions/{execution_id}/log", response_class=HTMLResponse)
async def combined_log(
    request: Request,
    execution_id: str,
    host: Annotated[str, Query(max_length=253)] = "",
    text: Annotated[str, Query(max_length=200)] = "",
    download: Annotated[bool, Query()] = False,
) -> Response:
    ctx = web_context(request)
    store = ctx.store
    record = await in_thread(store.execution_header, execution_id)
    if download:

        def body() -> Iterator[bytes]:
            for line in combined_lines(store, execution_id, host=host, text=text):
                yield (format_line(line) + "\n").encode("utf-8")

        return StreamingResponse(
            body(),
            media_type="text/plain; charset=utf-8",
            headers={"Content-Disposition": attachment(f"muster-{execution_id}-combined.log")},
        )

    def first() -> tuple[list[LogLine], bool]:
        lines = list(
            itertools.islice(combined_lines(store, execution_id, host=host, text=text), SHOWN + 1)
        )
        return lines[:SHOWN], len(lines) > SHOWN

    lines, more = await in_thread(first)
    width = max((len(line.host) for line in lines), default=0)
    return page(
        request,
        "combined_log.html",
        execution=record,
        lines=lines,
        more=more,
        shown=SHOWN,
        width=width,
        host=host,
        text=text,
        params={"host": host, "text": text},
    )
