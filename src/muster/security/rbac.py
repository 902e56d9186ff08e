"""Permissions, roles, and the one question every route asks: may these roles do this?

Permissions are a closed enum. A role is a named set of them: four are built
in (``viewer``, ``operator``, ``approver``, ``admin``) and custom roles are
any other name with any set. The ``admin`` *permission* implies every other
one, so "is admin" is never checked separately from "has permission".

A token with a narrower role acts with the intersection of that role's
permissions and its user's current ones: a token can only take away, never
add, and demoting a user demotes their tokens at once. ``admin`` is expanded
to every permission before intersecting, so an admin's viewer token is a
viewer and an operator's admin token is an operator.

``hosts.local`` is in no built-in role but ``admin``: a host on the local
transport is the server's own machine, so creating, changing or targeting one
is a capability of its own, never a side effect of ``hosts.manage`` or of
being allowed to run scripts (Semaphore's CVE-2023-39059 was this class).

``approvals.manage`` is in no built-in role but ``admin``: whoever may run or
edit a script must not be able to waive the approval its runs need, so
setting a requirement is separate from deciding one (``approvals.decide``).

``windows.manage`` and ``windows.override`` are in no built-in role but
``admin``: a window is a safety control, so whoever may run work must not
be able to widen, delete or skip it as a side effect.

``commands.run`` (ad-hoc command lines, from the API or the console's
command box) is in ``operator`` and ``admin``: an operator's day includes
them, as in Rundeck's Commands tab; a custom role holding ``jobs.manage``
without it may run the library's scripts but not free text.

``audit.view`` is deliberately not in ``viewer``: the audit log names every
actor, address and parameter, which is more than a read-only dashboard user
needs; grant it through ``admin`` or a custom role.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from muster.errors import PermissionDeniedError, ValidationError

__all__ = [
    "ALL_PERMISSIONS",
    "BUILTIN_ROLES",
    "Permission",
    "Principal",
    "effective_permissions",
    "has_permission",
    "parse_permissions",
    "permissions_of",
    "role_permissions",
    "validate_custom_role",
]


class Permission(enum.StrEnum):
    JOBS_VIEW = "jobs.view"
    JOBS_MANAGE = "jobs.manage"
    SCRIPTS_VIEW = "scripts.view"
    SCRIPTS_MANAGE = "scripts.manage"
    WORKFLOWS_VIEW = "workflows.view"
    WORKFLOWS_MANAGE = "workflows.manage"
    SCHEDULES_VIEW = "schedules.view"
    #: Create, change, pause, resume, delete and run-now schedules; a schedule also
    #: needs its owner's permission to run its target (scripts.manage / jobs.manage).
    SCHEDULES_MANAGE = "schedules.manage"
    HOSTS_VIEW = "hosts.view"
    HOSTS_MANAGE = "hosts.manage"
    #: Create, change or target a host on the local transport: the server's own machine.
    HOSTS_LOCAL = "hosts.local"
    #: Run a free command line (ad-hoc commands, the ``command`` job type): more than
    #: running the library's reviewed scripts, so it is granted on its own.
    COMMANDS_RUN = "commands.run"
    CREDENTIALS_MANAGE = "credentials.manage"
    APPROVALS_DECIDE = "approvals.decide"
    #: Change whether runs need approval (script, host group, command/job rules).
    APPROVALS_MANAGE = "approvals.manage"
    AUDIT_VIEW = "audit.view"
    #: Define or delete maintenance windows (deleting one would let everything run).
    WINDOWS_MANAGE = "windows.manage"
    #: Run an execution outside its hosts' maintenance windows ("run now anyway").
    WINDOWS_OVERRIDE = "windows.override"
    ADMIN = "admin"


P = Permission
ALL_PERMISSIONS: Final = frozenset(Permission)
_VIEWER = frozenset({P.JOBS_VIEW, P.SCRIPTS_VIEW, P.WORKFLOWS_VIEW, P.HOSTS_VIEW, P.SCHEDULES_VIEW})
_OPERATOR = _VIEWER | {
    P.JOBS_MANAGE,
    P.SCRIPTS_MANAGE,
    P.WORKFLOWS_MANAGE,
    P.HOSTS_MANAGE,
    P.SCHEDULES_MANAGE,
    P.COMMANDS_RUN,
}

#: Built-in roles; custom roles may not reuse these names.
BUILTIN_ROLES: Final[Mapping[str, frozenset[Permission]]] = {
    "viewer": _VIEWER,
    "operator": _OPERATOR,
    "approver": _VIEWER | {P.APPROVALS_DECIDE},
    "admin": ALL_PERMISSIONS,
}
_ROLE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")


def _expand(perms: Iterable[Permission]) -> frozenset[Permission]:
    perms = frozenset(perms)
    return ALL_PERMISSIONS if P.ADMIN in perms else perms


def parse_permissions(names: Iterable[str], *, field: str = "permissions") -> frozenset[Permission]:
    """Permission names to the enum; an unknown name is a ``ValidationError`` naming it."""
    out: set[Permission] = set()
    for name in names:
        try:
            out.add(Permission(name))
        except ValueError:
            raise ValidationError(f"{field}: unknown permission {name!r}", field=field) from None
    return frozenset(out)


def validate_custom_role(name: str, permissions: Iterable[str]) -> frozenset[Permission]:
    """Check a custom role definition; returns its permission set."""
    if name in BUILTIN_ROLES:
        raise ValidationError(f"name: {name!r} is a built-in role", field="name")
    if not _ROLE_NAME.fullmatch(name):
        raise ValidationError(
            "name: a role is lower-case letters, digits, _ and -, starting with a letter",
            field="name",
        )
    return parse_permissions(permissions)


def role_permissions(
    role: str, custom: Mapping[str, Iterable[Permission]] | None = None
) -> frozenset[Permission]:
    """The permissions of one role, ``admin`` expanded; an unknown role has none."""
    if role in BUILTIN_ROLES:
        return _expand(BUILTIN_ROLES[role])
    if custom and role in custom:
        return _expand(custom[role])
    return frozenset()


def permissions_of(
    roles: Iterable[str], custom: Mapping[str, Iterable[Permission]] | None = None
) -> frozenset[Permission]:
    """Union of the roles' permissions."""
    out: frozenset[Permission] = frozenset()
    for role in roles:
        out |= role_permissions(role, custom)
    return out


def effective_permissions(
    user_roles: Iterable[str],
    token_role: str | None = None,
    custom: Mapping[str, Iterable[Permission]] | None = None,
) -> frozenset[Permission]:
    """What a caller may do: the user's permissions, narrowed by a token's role if any."""
    mine = permissions_of(user_roles, custom)
    if token_role is None:
        return mine
    return mine & role_permissions(token_role, custom)


def has_permission(
    roles: Iterable[str],
    perm: Permission,
    custom: Mapping[str, Iterable[Permission]] | None = None,
    *,
    token_role: str | None = None,
) -> bool:
    return perm in effective_permissions(roles, token_role, custom)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller and what they may do, fixed for one request."""

    user_id: str
    name: str
    roles: tuple[str, ...]
    permissions: frozenset[Permission]
    #: ``password``/``session`` (console) or ``token``.
    via: str = "session"
    token_role: str | None = None
    #: A generated one-time password is still in use: until it is changed the
    #: server answers only "who am I", "change password" and "log out".
    must_change_password: bool = False

    def can(self, perm: Permission) -> bool:
        return perm in self.permissions

    def require(self, perm: Permission) -> None:
        """Raise ``PermissionDeniedError`` (HTTP 403) naming the missing permission."""
        if perm not in self.permissions:
            raise PermissionDeniedError(f"{self.name} lacks permission {perm.value}")
