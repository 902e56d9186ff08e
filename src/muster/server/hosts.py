"""``/api/v1/hosts``: the machines executions target, and inventory import."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from muster.domain.hosts import Host, TransportKind
from muster.errors import ValidationError
from muster.security.rbac import Principal
from muster.server.auth import CurrentUser
from muster.server.context import ServerContext, get_context
from muster.server.host_import import parse_import, stop_check
from muster.server.schemas.hosts import HostIn, HostList, HostOut, HostPatch, ImportIn, ImportOut
from muster.server.views import host_out
from muster.services.host_logins import (
    CredentialLookup,
    changed_host,
    require_login_permission,
)
from muster.services.local_hosts import local_names, require_local_permission, written_local_hosts

__all__ = ["change_host", "credential_lookup", "router"]

router = APIRouter(prefix="/api/v1/hosts", tags=["hosts"])
Ctx = Annotated[ServerContext, Depends(get_context)]

_SHELLS = frozenset({"bash", "sh", "zsh", "ksh", "python", "powershell", "cmd"})


def _check_shells(shells: list[str] | None) -> None:
    for i, shell in enumerate(shells or ()):
        if shell not in _SHELLS:
            raise ValidationError(
                f"unknown shell {shell!r} (one of {', '.join(sorted(_SHELLS))})",
                field=f"shells.{i}",
            )


def credential_lookup(ctx: ServerContext) -> CredentialLookup | None:
    return ctx.store if isinstance(ctx.store, CredentialLookup) else None


@router.get("", response_model=HostList)
def list_hosts(ctx: Ctx, group: str | None = None) -> HostList:
    hosts = ctx.store.list_hosts()
    if group:
        hosts = [h for h in hosts if group in h.groups]
    return HostList(items=[host_out(h) for h in hosts], total=len(hosts))


@router.post("", response_model=HostOut, status_code=201)
def create_host(body: HostIn, ctx: Ctx, who: CurrentUser) -> HostOut:
    _check_shells(body.shells)
    host = Host(
        name=body.name,
        address=body.address,
        port=body.port,
        user=body.user,
        transport=TransportKind(body.transport),
        platform=body.platform,
        shells=tuple(body.shells),
        labels=dict(body.labels),
        groups=tuple(body.groups),
        key_file=body.key_file,
        credential_ref=body.credential_ref,
    )
    require_local_permission(who, local_names([host]), doing="create")
    require_login_permission(who, [(None, host)], credential_lookup(ctx))
    return host_out(ctx.store.create_host(host))


@router.get("/{host_id}", response_model=HostOut)
def get_host(host_id: str, ctx: Ctx) -> HostOut:
    return host_out(ctx.store.get_host(host_id))


def change_host(host_id: str, body: HostPatch, ctx: ServerContext, who: Principal) -> HostOut:
    """Change the fields ``body`` gives, with the API's checks (also the console's)."""
    _check_shells(body.shells)
    record = ctx.store.get_host(host_id)
    changes: dict[str, Any] = {}
    for key, value in body.model_dump(exclude_unset=True).items():
        if value is None and key not in ("address", "user", "key_file", "credential_ref"):
            raise ValidationError(f"{key} cannot be null", field=key)
        if key in ("shells", "groups"):
            value = tuple(value)
        elif key == "transport":
            value = TransportKind(value)
        changes[key] = value
    if not changes:
        return host_out(record)
    if changes.get("transport") is TransportKind.LOCAL or record.transport is TransportKind.LOCAL:
        require_local_permission(who, [record.name], doing="change")
    before = record.to_host()
    require_login_permission(who, [(before, changed_host(before, changes))], credential_lookup(ctx))
    return host_out(ctx.store.update_host(record.id, **changes))


@router.put("/{host_id}", response_model=HostOut)
def put_host(host_id: str, body: HostPatch, ctx: Ctx, who: CurrentUser) -> HostOut:
    return change_host(host_id, body, ctx, who)


@router.patch("/{host_id}", response_model=HostOut)
def patch_host(host_id: str, body: HostPatch, ctx: Ctx, who: CurrentUser) -> HostOut:
    return change_host(host_id, body, ctx, who)


@router.delete("/{host_id}", status_code=204)
def delete_host(host_id: str, ctx: Ctx, who: CurrentUser) -> Response:
    record = ctx.store.get_host(host_id)
    require_local_permission(who, local_names([record]), doing="delete")
    ctx.store.delete_host(record.id)
    return Response(status_code=204)


@router.post("/import", response_model=ImportOut, status_code=201)
def import_hosts(body: ImportIn, ctx: Ctx, who: CurrentUser, request: Request) -> ImportOut:
    """Add (and by default update) every host of an INI, YAML or ssh_config inventory.

    Capped (``max_import_bytes``, ``max_import_hosts``); stops between store
    batches, keeping nothing, when the client leaves or the server stops."""
    hosts = parse_import(body, ctx.settings)
    require_local_permission(who, written_local_hosts(ctx.store, hosts), doing="import")
    stored = {r.name: r.to_host() for r in ctx.store.list_hosts()}
    require_login_permission(who, [(stored.get(h.name), h) for h in hosts], credential_lookup(ctx))
    created, updated = ctx.store.upsert_hosts(
        hosts, update_existing=body.update_existing, should_stop=stop_check(request, ctx)
    )
    return ImportOut(created=created, updated=updated, total=len(created) + len(updated))
