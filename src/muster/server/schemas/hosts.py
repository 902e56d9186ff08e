"""Hosts: where plans run."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from muster.domain.hostnames import MAX_HOST_NAME, host_name_problem
from muster.server.schemas.common import Request, Response

__all__ = ["HostIn", "HostList", "HostOut", "HostPatch", "ImportIn", "ImportOut"]

TransportName = Literal["local", "ssh", "agent"]


def _host_name(value: str) -> str:
    problem = host_name_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


#: A new or changed host name (:mod:`muster.domain.hostnames`: letters, digits, ``-``,
#: ``_``, dot-separated labels); stored names from before the rule stay readable.
HostName = Annotated[str, Field(min_length=1, max_length=MAX_HOST_NAME), AfterValidator(_host_name)]


class HostIn(Request):
    name: HostName
    address: str | None = None
    port: int = Field(default=22, ge=1, le=65535)
    user: str | None = None
    transport: TransportName = "ssh"
    platform: str = "linux"
    shells: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    groups: list[str] = Field(default_factory=list)
    #: Private key file on the server (or worker) for this host's SSH login.
    key_file: str | None = None
    #: Name of a vault credential (``/api/v1/credentials``) to log in with.
    credential_ref: str | None = Field(default=None, max_length=128)


class HostPatch(Request):
    """Every field optional: only the fields given change (PUT and PATCH alike)."""

    name: HostName | None = None
    address: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    user: str | None = None
    transport: TransportName | None = None
    platform: str | None = None
    shells: list[str] | None = None
    labels: dict[str, str] | None = None
    groups: list[str] | None = None
    key_file: str | None = None
    credential_ref: str | None = Field(default=None, max_length=128)


class HostOut(Response):
    id: str
    name: str
    address: str | None
    port: int
    user: str | None
    transport: str
    platform: str
    shells: list[str]
    effective_shells: list[str]
    labels: dict[str, str]
    groups: list[str]
    key_file: str | None
    credential_ref: str | None = None


class HostList(Response):
    items: list[HostOut]
    total: int


class ImportIn(Request):
    content: str = Field(min_length=1)
    format: Literal["ini", "yaml", "ssh_config", "auto"] = "auto"
    #: Replace hosts of the same name (else they are reported as conflicts).
    update_existing: bool = True


class ImportOut(Response):
    created: list[str]
    updated: list[str]
    total: int
