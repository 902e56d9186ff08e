"""Who may decide how the server logs in to a host, and where that login goes.

A host's SSH login can use a key file on the server's own disk or a vault
credential (the host's own, or its group's). Both are the server's secrets,
not the operator's: an operator who could point ``key_file`` at
``/root/.ssh/id_ed25519``, or send a host that logs in with a vault
password to an address they control, would read the server's files or
harvest the secret without ever seeing it. So:

- setting ``key_file`` is reading a file on the server's own machine and
  needs ``hosts.local`` (admin only, like local hosts);
- a write that leaves a host logging in with a vault credential, and that
  changes which credential it uses or where the login goes (address, port,
  user, name, groups, transport), needs ``credentials.manage``.

Refusals are 403s naming the host and what was asked, and nothing is stored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Protocol, runtime_checkable

from muster.domain.hosts import Host
from muster.errors import PermissionDeniedError
from muster.security.rbac import Permission

__all__ = ["LOGIN_FIELDS", "CredentialLookup", "changed_host", "require_login_permission"]

#: Fields that decide where a host's login goes or which secret it uses.
LOGIN_FIELDS = frozenset(
    {"address", "port", "user", "name", "groups", "transport", "credential_ref", "key_file"}
)


class _Caller(Protocol):
    @property
    def name(self) -> str: ...
    def can(self, perm: Permission) -> bool: ...


@runtime_checkable
class CredentialLookup(Protocol):
    """The store's answer to "which vault credential does this host log in with?"."""

    def credential_ref_for(self, host: Host) -> str | None: ...


def _login_of(host: Host) -> tuple[object, ...]:
    return (
        host.address,
        host.port,
        host.user,
        host.name,
        tuple(host.groups),
        host.transport,
        host.credential_ref,
        host.key_file,
    )


def require_login_permission(
    who: _Caller | None,
    changes: Iterable[tuple[Host | None, Host]],
    credentials: CredentialLookup | None,
) -> None:
    """Refuse host writes (``(before, after)`` pairs; ``before`` None for a new host)
    that set a key file without ``hosts.local``, or that move a credentialled login
    without ``credentials.manage``. No caller fails closed."""
    may_key = who is not None and who.can(Permission.HOSTS_LOCAL)
    may_cred = who is not None and who.can(Permission.CREDENTIALS_MANAGE)
    caller = who.name if who is not None else "an unidentified caller"
    for before, after in changes:
        if after.key_file and not may_key and (before is None or before.key_file != after.key_file):
            raise PermissionDeniedError(
                f"{caller} lacks permission {Permission.HOSTS_LOCAL.value}, needed to set "
                f"key_file on host {after.name!r}: it names a file on the server's own machine"
            )
        if may_cred or credentials is None:
            continue
        if before is not None and _login_of(before) == _login_of(after):
            continue
        ref = credentials.credential_ref_for(after)
        if ref is not None:
            raise PermissionDeniedError(
                f"{caller} lacks permission {Permission.CREDENTIALS_MANAGE.value}, needed to "
                f"change where or how host {after.name!r} logs in: it uses vault credential "
                f"{ref!r}"
            )


def changed_host(before: Host, changes: Mapping[str, object]) -> Host:
    """``before`` with ``changes`` applied (the same fields a host update takes)."""
    return dataclasses.replace(before, **changes)  # type: ignore[arg-type]
