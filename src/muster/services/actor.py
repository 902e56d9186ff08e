"""Who asks a service to act, and from where: the request's facts as plain values.

A service never sees a request. The face that received one (an HTTP route,
a console form, a CLI command) turns its authenticated caller into an
:class:`Actor` and passes it down, so the same call works without HTTP and
every audit record a service writes names the caller and the address.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from muster.security.rbac import Permission, Principal

__all__ = ["Actor", "AuditSink"]


@dataclass(frozen=True, slots=True)
class Actor:
    """A caller: name, roles and permissions as authenticated, and the client's address."""

    name: str
    roles: tuple[str, ...] = ()
    permissions: frozenset[Permission] = field(default_factory=frozenset)
    #: A token narrowed to one role acts (and votes) with that role only.
    token_role: str | None = None
    #: The client's address as the face saw it (after trusted proxies); None off the network.
    address: str | None = None

    @classmethod
    def of(cls, principal: Principal, address: str | None = None) -> Actor:
        return cls(
            name=principal.name,
            roles=principal.roles,
            permissions=principal.permissions,
            token_role=principal.token_role,
            address=address,
        )

    def can(self, perm: Permission) -> bool:
        return perm in self.permissions

    @property
    def voting_roles(self) -> tuple[str, ...]:
        """The roles this caller's approval votes count for."""
        if self.token_role is None:
            return self.roles
        return tuple(r for r in self.roles if r == self.token_role)


class AuditSink(Protocol):
    """Where a service writes its audit records: the store's ``record_audit``, narrowed
    to what services pass, so a service test can hand in a list-backed stand-in."""

    def record_audit(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        address: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Any: ...
