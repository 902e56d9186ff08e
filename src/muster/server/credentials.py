"""``/api/v1/credentials``: the vault over HTTP, write-only.

A credential's value goes in once (create) and never comes back: list and
get return metadata (name, kind, login user, key fingerprint, which master
key sealed it). Hosts name a credential in ``credential_ref``; a group can
have a default one for member hosts that name none.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from muster.domain.credentials import CredentialKind
from muster.domain.secret import Secret
from muster.errors import ValidationError
from muster.server.auth import CurrentUser, client_address, security_store
from muster.store.credential_store import CredentialInfo
from muster.store.protocols import CredentialStore
from muster.transports.ssh_credentials import key_fingerprint

__all__ = ["credential_store", "router"]

router = APIRouter(prefix="/api/v1", tags=["credentials"])


class CredentialIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    kind: CredentialKind
    #: The private key (OpenSSH/PEM text), password or token. Never returned.
    secret: str = Field(min_length=1, max_length=65536, json_schema_extra={"writeOnly": True})
    #: For an encrypted private key.
    passphrase: str | None = Field(
        default=None, max_length=1024, json_schema_extra={"writeOnly": True}
    )
    username: str | None = Field(default=None, max_length=128)
    description: str = Field(default="", max_length=2000)


class GroupCredentialIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: A credential name or id; null removes the group's default.
    credential: str | None = Field(default=None, max_length=128)


class CredentialOut(BaseModel):
    id: str
    name: str
    kind: CredentialKind
    description: str
    username: str | None
    fingerprint: str | None
    key_id: str
    has_passphrase: bool
    created_by: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


def credential_store(app: Any) -> CredentialStore:
    """The app's store, for its credential area (sealed with the store's vault)."""
    store: CredentialStore = app.state.muster.store
    return store


def _out(info: CredentialInfo) -> CredentialOut:
    return CredentialOut(
        id=info.id,
        name=info.name,
        kind=info.kind,
        description=info.description,
        username=info.username,
        fingerprint=info.fingerprint,
        key_id=info.key_id,
        has_passphrase=info.has_passphrase,
        created_by=info.created_by,
        created_at=info.created_at,
        updated_at=info.updated_at,
    )


def _audit(request: Request, actor: str, action: str, target: str, **details: Any) -> None:
    security_store(request.app).record_audit(
        actor=actor,
        action=action,
        target=target,
        address=client_address(request),
        details=details,
    )


@router.get("/credentials", response_model=list[CredentialOut])
async def list_credentials(request: Request) -> list[CredentialOut]:
    items = await run_in_threadpool(credential_store(request.app).list_credentials)
    return [_out(i) for i in items]


@router.post("/credentials", response_model=CredentialOut, status_code=201)
def create_credential(body: CredentialIn, who: CurrentUser, request: Request) -> CredentialOut:
    """Seal a credential; the response and every later read carry metadata only."""
    fingerprint = None
    if body.kind is CredentialKind.SSH_KEY:
        try:
            fingerprint = key_fingerprint(body.secret, body.passphrase)
        except ValueError as exc:
            raise ValidationError(f"secret: {exc}", field="secret") from None
    info = credential_store(request.app).create_credential(
        body.name,
        body.kind,
        Secret(body.secret),
        username=body.username,
        passphrase=Secret(body.passphrase) if body.passphrase else None,
        description=body.description,
        fingerprint=fingerprint,
        created_by=who.name,
    )
    _audit(request, who.name, "credential.create", f"credential:{info.name}", kind=info.kind.value)
    return _out(info)


@router.get("/credentials/{credential_id}", response_model=CredentialOut)
def get_credential(credential_id: str, request: Request) -> CredentialOut:
    return _out(credential_store(request.app).get_credential(credential_id))


@router.delete("/credentials/{credential_id}", status_code=204)
def delete_credential(credential_id: str, who: CurrentUser, request: Request) -> Response:
    info = credential_store(request.app).delete_credential(credential_id)
    _audit(request, who.name, "credential.delete", f"credential:{info.name}")
    return Response(status_code=204)


@router.get("/groups/credentials")
def list_group_credentials(request: Request) -> dict[str, str]:
    """Each group's default credential name."""
    return credential_store(request.app).group_credentials()


@router.put("/groups/{group}/credential")
def set_group_credential(
    group: str, body: GroupCredentialIn, who: CurrentUser, request: Request
) -> dict[str, str | None]:
    credential_store(request.app).set_group_credential(group, body.credential)
    _audit(request, who.name, "group.credential", f"group:{group}", credential=body.credential)
    return {"group": group, "credential": body.credential}
