"""``/api/v1/rollouts``: publish rollout reports, list them, read one, export its evidence.

Publishing (``workflows.manage``; audited as ``rollout.publish``) takes the
report document a rollout wrote (``muster rollout publish FILE``, or
``report_document`` in the library) as the request body: 201 when stored,
200 when the identical document was already published, 409 when the id is
taken by other content, 413 above ``max_rollout_report_bytes``, 422 naming
what is missing. Reading needs ``workflows.view``. Secret values are masked
before the document is stored (:mod:`muster.services.rollout_reports`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from muster.errors import MusterError, ValidationError
from muster.server.actors import CurrentActor
from muster.server.context import ServerContext, get_context
from muster.server.limits import human_bytes
from muster.services.rollout_reports import RolloutReportService
from muster.store.protocols import ServerStore
from muster.store.rollout_reports import RolloutReportRecord

__all__ = ["record_json", "router", "vault_secrets"]

router = APIRouter(prefix="/api/v1/rollouts", tags=["rollouts"])
Ctx = Annotated[ServerContext, Depends(get_context)]


def vault_secrets(store: ServerStore) -> Iterator[str]:
    """Every credential value in the vault (to mask them in a published report)."""
    for info in store.list_credentials():
        try:
            cred = store.open_credential(info.id)
        except MusterError:  # no vault key here: nothing of it can be opened, or shown
            return
        yield cred.secret.reveal()
        if cred.passphrase is not None:
            yield cred.passphrase.reveal()


def service(ctx: ServerContext) -> RolloutReportService:
    store = ctx.store
    return RolloutReportService(store, store, secrets=lambda: list(vault_secrets(store)))


def record_json(r: RolloutReportRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "workflow": r.workflow,
        "status": r.status,
        "started_at": r.started_at,
        "finished_at": r.finished_at,
        "hosts": r.hosts,
        "flagged": r.flagged,
        "published_by": r.published_by,
        "published_at": r.published_at,
        "content_hash": r.content_hash,
    }


@router.post("", status_code=201, response_model=None)
async def publish(request: Request, ctx: Ctx, who: CurrentActor) -> JSONResponse:
    """Publish a rollout report (the JSON document as the body)."""
    limit = ctx.settings.max_rollout_report_bytes
    body = await request.body()
    if len(body) > limit:
        raise HTTPException(
            status_code=413,
            detail=f"a rollout report may be at most {human_bytes(limit)} "
            f"(this one is {len(body)} bytes)",
        )
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"the body is not JSON: {exc}", field="document") from exc
    out = await run_in_threadpool(service(ctx).publish, who, document)
    payload = {**record_json(out.record), "created": out.created}
    return JSONResponse(
        json.loads(json.dumps(payload, default=str)), status_code=201 if out.created else 200
    )


@router.get("")
def list_reports(
    ctx: Ctx, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    return [record_json(r) for r in ctx.store.list_rollout_reports(limit=limit)]


@router.get("/{report_id}")
def get_report(report_id: str, ctx: Ctx) -> dict[str, Any]:
    """The listed columns and the whole document."""
    record = ctx.store.get_rollout_report(report_id)
    return {**record_json(record), "document": ctx.store.rollout_report_document(report_id)}


@router.get("/{report_id}/evidence.json")
def export_evidence(report_id: str, ctx: Ctx) -> Response:
    """The report as a JSON file to keep (evidence of what each host looked like)."""
    doc = ctx.store.rollout_report_document(report_id)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in report_id)
    return Response(
        json.dumps(doc, indent=2, sort_keys=True),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="rollout-{safe}-evidence.json"'},
    )
