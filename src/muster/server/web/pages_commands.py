"""Ad-hoc commands (like Rundeck's Commands tab): one command line on chosen hosts,
then the same live view as any execution.

Behind its own permission, ``commands.run`` (operator and admin by default):
running free text on a fleet is more than running the reviewed scripts of
the library. The command goes through the submission service exactly as
``POST /api/v1/automation/commands`` does (size limit, host resolution,
``hosts.local`` for the server's own machine, the approval rule for
commands, the audit record).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from muster.errors import PermissionDeniedError, ValidationError
from muster.server.actors import current_actor
from muster.server.limits import check_command
from muster.server.schemas.jobs import CommandIn
from muster.server.web.page_tools import api_model, field, words
from muster.server.web.render import HtmlErrorRoute, form_data, in_thread, page, web_context

__all__ = ["router"]

router = APIRouter(route_class=HtmlErrorRoute, include_in_schema=False)

SHELLS = ("sh", "bash", "zsh", "ksh", "python")


def _form(
    request: Request, values: dict[str, str], problems: dict[str, str], status: int = 200
) -> HTMLResponse:
    store = web_context(request).store
    return page(
        request,
        "commands.html",
        status_code=status,
        values=values,
        problems=problems,
        shells=SHELLS,
        picker=store.fleet_facets(),
        targets=values.get("targets", ""),
    )


@router.get("/commands", response_class=HTMLResponse)
def command_form(request: Request) -> HTMLResponse:
    return _form(request, {"shell": "sh", "timeout": "300"}, {})


@router.post("/commands", response_class=HTMLResponse)
async def run_command(request: Request) -> Any:
    ctx = web_context(request)
    form = await form_data(request)
    values = {k: field(form, k) for k in ("command", "targets", "shell", "timeout")}
    values["command"] = form.get("command", [""])[0]
    actor = current_actor(request)
    try:
        body = api_model(
            CommandIn,
            {
                "command": values["command"],
                "host_ids": words(values["targets"]),
                "shell": values["shell"] or "sh",
                "timeout": values["timeout"] or 300,
            },
        )
        if body.shell not in SHELLS:
            raise ValidationError(f"shell: one of {', '.join(SHELLS)}", field="shell")
        check_command(ctx.settings, body.command)
        execution = await in_thread(
            ctx.submission.command,
            actor,
            body.command,
            body.host_ids,
            timeout=body.timeout,
            shell=body.shell,
        )
    except (ValidationError, PermissionDeniedError) as exc:
        problems = dict(getattr(exc, "problems", None) or {"form": str(exc)})
        if "host_ids" in problems:
            problems["targets"] = problems.pop("host_ids")
        return _form(request, values, problems, 422)
    return RedirectResponse(f"/executions/{execution.id}", status_code=303)
